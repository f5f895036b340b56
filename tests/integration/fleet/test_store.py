"""The fleet store against SQLite and a real PostgreSQL 15 server (each test runs on both)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.errors import ConflictError, NotFoundError, ValidationError
from prognos.fleet.records import AlertCondition, EngineScore, PredictionRecord, ReadingBatch
from prognos.fleet.store import FleetStore
from prognos.fleet.tables import AlertRow, PredictionRow, ReadingRow, utcnow

S3 = MEASUREMENT_FIELDS.index("s3")
S5 = MEASUREMENT_FIELDS.index("s5")


def batch(engine: str, cycles: list[int]) -> ReadingBatch:
    """Readings whose values depend only on (engine, cycle), so a resend is identical."""
    rows = []
    for c in cycles:
        rng = np.random.default_rng([c, sum(map(ord, engine))])
        rows.append(rng.normal(500, 10, 24))
    values = np.array(rows)
    values[:, S3] = np.nan  # a channel the client did not send
    return ReadingBatch(engine, np.array(cycles, dtype=np.int64), values)


def score(engine: str, cycle: int, lower: float, conditions: dict[str, AlertCondition | None]) -> EngineScore:
    p = PredictionRecord(engine, cycle, lower + 10, lower, lower + 20, 0.9, "warning", "m1")
    return EngineScore(engine, cycle, p, conditions)


def test_readings_round_trip_exactly(store: FleetStore) -> None:
    b = batch("e1", [1, 2, 3])
    [stored] = store.add_readings([b])
    assert (stored.accepted, stored.duplicates, stored.last_cycle, stored.previous_last_cycle) == (3, 0, 3, None)
    [h] = store.history(["e1"], 10)
    np.testing.assert_array_equal(h.cycles, [1, 2, 3])
    # float64 survives both databases bit for bit; the channel never sent stays missing (NaN)
    np.testing.assert_array_equal(h.values, b.values)
    engine = store.get_engine("e1")
    assert engine.last_cycle == 3 and engine.n_readings == 3 and engine.status == "unknown"


def test_history_is_the_latest_n_oldest_first(store: FleetStore) -> None:
    store.add_readings([batch("e1", list(range(1, 11)))])
    [h] = store.history(["e1"], 4)
    assert h.cycles.tolist() == [7, 8, 9, 10]


def test_exact_resend_counts_duplicates_and_stores_nothing_twice(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1, 2, 3])])
    [res] = store.add_readings([batch("e1", [2, 3, 4])])
    assert (res.accepted, res.duplicates, res.previous_last_cycle, res.last_cycle) == (1, 2, 3, 4)
    assert store.readings("e1").total == 4
    assert store.get_engine("e1").n_readings == 4


def test_conflicting_resend_is_rejected_and_the_whole_call_rolls_back(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1, 2, 3])])
    changed = batch("e1", [3, 4, 5])
    changed.values[0, S5] += 0.5  # cycle 3 differs in one sensor
    with pytest.raises(ConflictError) as err:
        store.add_readings([batch("e2", [1, 2]), changed])
    msg = str(err.value)
    assert "'e1'" in msg and "cycle 3" in msg and "s5=" in msg
    # all or nothing: e2 (first in the call) and cycles 4-5 of e1 were not stored
    assert store.readings("e1").total == 3
    with pytest.raises(NotFoundError):
        store.get_engine("e2")


def test_a_value_sent_where_none_was_stored_is_a_conflict(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1])])
    filled = batch("e1", [1])
    filled.values[0, S3] = 1.0
    with pytest.raises(ConflictError, match="s3"):
        store.add_readings([filled])


def test_unique_engine_cycle_is_enforced_by_the_database(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1])])
    with pytest.raises(IntegrityError), store.db.write_sessions.begin() as s:
        s.execute(insert(ReadingRow).values(engine_id="e1", cycle=1, received_at=utcnow()))


def test_engine_listing_filters_sorts_searches_and_pages(store: FleetStore) -> None:
    for i, lower in enumerate([50.0, 5.0, 30.0]):
        eid = f"site-a-{i}" if i < 2 else "site-b-0"
        store.add_readings([batch(eid, [1, 2])])
        store.save_scores([score(eid, 2, lower, {})])
    page = store.list_engines(sort="lower")
    assert [e["lower"] for e in page.items] == [5.0, 30.0, 50.0] and page.total == 3
    assert [e["lower"] for e in store.list_engines(sort="-lower").items] == [50.0, 30.0, 5.0]
    assert {e["engine_id"] for e in store.list_engines(q="SITE-A").items} == {"site-a-0", "site-a-1"}
    two = store.list_engines(sort="engine_id", limit=2, offset=1)
    assert [e["engine_id"] for e in two.items] == ["site-a-1", "site-b-0"] and two.total == 3
    with pytest.raises(ValidationError, match="sort"):
        store.list_engines(sort="colour")


def test_an_older_prediction_never_overwrites_a_newer_one(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1, 2, 3])])
    store.save_scores([score("e1", 3, 20.0, {})])
    store.save_scores([score("e1", 2, 90.0, {})])  # finished late: history only
    assert store.get_engine("e1").lower == 20.0
    assert store.predictions("e1").total == 2


def test_alert_lifecycle_and_at_most_one_active_alert_per_kind(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1, 2])])
    warn = AlertCondition("warning", "low")
    [opened] = store.save_scores([score("e1", 2, 30.0, {"rul_low": warn})])
    assert opened.event == "opened" and opened.alert.status == "open"
    assert store.save_scores([score("e1", 2, 30.0, {"rul_low": warn})]) == []  # still holds: no duplicate
    acked = store.acknowledge_alert(opened.alert.id, "ops")
    assert acked.status == "acknowledged" and acked.acknowledged_by == "ops"
    # worse while acknowledged: the same alert escalates and needs attention again
    [esc] = store.save_scores([score("e1", 2, 3.0, {"rul_low": AlertCondition("critical", "very low")})])
    assert (esc.event, esc.alert.id, esc.alert.severity, esc.alert.status) == ("escalated", opened.alert.id,
                                                                                "critical", "open")
    [res] = store.save_scores([score("e1", 2, 80.0, {"rul_low": None})])  # condition cleared
    assert (res.event, res.alert.status, res.alert.resolved_by) == ("resolved", "resolved", "auto")
    [again] = store.save_scores([score("e1", 2, 30.0, {"rul_low": warn})])
    assert again.event == "opened" and again.alert.id != opened.alert.id
    assert store.list_alerts(engine_id="e1").total == 2
    assert store.list_alerts(status="open").total == 1
    with pytest.raises(ConflictError):
        store.acknowledge_alert(opened.alert.id, "ops")  # resolved alerts stay resolved
    with pytest.raises(NotFoundError):
        store.resolve_alert(10_000, "ops")


def test_the_database_refuses_a_second_active_alert(store: FleetStore) -> None:
    store.add_readings([batch("e1", [1])])
    store.save_scores([score("e1", 1, 3.0, {"stuck_sensor": AlertCondition("warning", "x")})])
    now = utcnow()
    with pytest.raises(IntegrityError), store.db.write_sessions.begin() as s:
        s.execute(insert(AlertRow).values(engine_id="e1", kind="stuck_sensor", severity="warning", status="open",
                                          message="dup", details={}, opened_at=now, updated_at=now))


def test_retention_deletes_old_rows_but_keeps_each_engines_latest_window(store: FleetStore) -> None:
    store.add_readings([batch("old", list(range(1, 21))), batch("new", [1, 2, 3])])
    for c in range(1, 21):
        store.save_scores([score("old", c, 50.0, {})])
    long_ago = utcnow() - timedelta(days=30)
    with store.db.write_sessions.begin() as s:
        s.execute(update(ReadingRow).where(ReadingRow.engine_id == "old").values(received_at=long_ago))
        s.execute(update(PredictionRow).where(PredictionRow.engine_id == "old").values(created_at=long_ago))
    result = store.delete_older_than(utcnow() - timedelta(days=7), keep_latest=5)
    assert (result.readings_deleted, result.predictions_deleted) == (15, 15)
    [old, new] = store.history(["old", "new"], 100)
    assert old.cycles.tolist() == [16, 17, 18, 19, 20]
    assert new.cycles.tolist() == [1, 2, 3]  # recent: untouched
    assert [p["cycle"] for p in store.predictions("old").items] == [16, 17, 18, 19, 20]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retention_job_runs_on_its_schedule(store: FleetStore) -> None:
    import asyncio
    import time

    from prognos.fleet.retention import RetentionJob

    store.add_readings([batch("old", list(range(1, 11)))])
    with store.db.write_sessions.begin() as s:
        s.execute(update(ReadingRow).values(received_at=utcnow() - timedelta(days=30)))

    async def run() -> RetentionJob:
        job = RetentionJob(store, days=7, keep_latest=3, interval_s=0.05)
        job.start()
        deadline = time.monotonic() + 10
        while len(job.runs) < 2:  # ran, and ran again on schedule
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await job.stop()
        return job

    job = asyncio.run(run())
    assert job.runs[0].readings_deleted == 7 and job.runs[1].readings_deleted == 0
    assert store.history(["old"], 100)[0].cycles.tolist() == [8, 9, 10]
