"""Alerts with memory and a stored status with hysteresis, on SQLite and a real PostgreSQL 15.

An engine driven warning -> critical -> eased -> healthy keeps ONE alert whose peak stays critical and
whose four transitions (with the cycle of each) read back through the API and on the alerts page
(Debian's Chromium); a falling prediction with a jittery lower bound never eases the stored status."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prognos.bundle import read_bundle
from prognos.config import get_settings
from prognos.data.validation import ValidSequence
from prognos.fleet.alerts import Debounce, RulPolicy
from prognos.fleet.records import EngineScore, PredictionRecord
from prognos.fleet.store import FleetStore
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService
from prognos.status import StatusThresholds, status_rank
from tests.integration.fleet.conftest import ADMIN_TOKEN, start_live_app
from tests.integration.fleet.readings import engine_readings
from tests.integration.fleet.test_store import batch


class Dial:
    """A model whose every answer is ``rul`` cycles: the test turns it."""

    rul = 100.0

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.rul)


def _levels(predictor: Predictor, dial: Dial, rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Model outputs for a healthy, a warning and a critical engine, and thresholds that tell them
    apart, from the tiny bundle's own (monotone) lower bounds at this engine's history."""
    seq = predictor.validate(rows)
    assert isinstance(seq, ValidSequence)

    def lower(r: float) -> float:
        dial.rul = r
        return predictor.predict_sequences(["e1"], [seq])[0].lower

    top = lower(125.0)
    grid = {r: lower(r) for r in np.linspace(0, 125, 126)}
    warn_r = min(grid, key=lambda r: abs(grid[r] - top / 2))
    assert 1.0 < grid[warn_r] < top - 1.0, grid  # the tiny model's bounds must leave room for three levels
    return grid[warn_r], top, warn_r


def test_warning_critical_eased_resolved_keeps_peak_and_four_transitions(
        database_url: str, tmp_path: Path, tiny_bundle: Path, request: pytest.FixtureRequest) -> None:
    rows = engine_readings()
    dial = Dial()
    predictor = Predictor(read_bundle(tiny_bundle), runtime=dial)
    warn_lower, top, warn_r = _levels(predictor, dial, rows[:40])
    settings = get_settings(data_dir=tmp_path / "state", database_url=database_url, admin_token=ADMIN_TOKEN,
                            bundle=tiny_bundle, log_level="WARNING", rate_limit_per_s=0,
                            critical_rul=warn_lower / 2, warning_rul=(warn_lower + top) / 2,
                            status_hold_readings=2, alert_resolve_readings=2, alert_min_open_s=0)
    app = start_live_app(settings, PredictionService(settings, predictor), dashboard=True)
    try:
        with app.client(app.key("operator")) as c:
            def send(i: int, rul: float) -> str:
                dial.rul = rul
                c.post("/api/v1/engines/e1/readings", json=rows[i:i + 1] if i else rows[:40]).raise_for_status()
                return str(c.get("/api/v1/engines/e1").json()["status"])

            # cycle 40 warning (opened), 41 critical (escalated), 42-43 warning: held critical for one
            # reading, eased on the second; 44-45 healthy: warning held, then clear; 46 clear again: resolved.
            assert send(0, warn_r) == "warning"
            assert send(40, 0.0) == "critical"
            assert send(41, warn_r) == "critical"  # better for 1 reading of 2: held
            assert send(42, warn_r) == "warning"
            assert send(43, 125.0) == "warning"
            assert send(44, 125.0) == "healthy"
            [alert] = c.get("/api/v1/alerts", params={"engine_id": "e1", "kind": "rul_low"}).json()["items"]
            assert alert["status"] == "open"  # clear once: the debounce wants two in a row
            send(45, 125.0)
            [alert] = c.get("/api/v1/alerts", params={"engine_id": "e1", "kind": "rul_low"}).json()["items"]
            assert (alert["status"], alert["severity"], alert["peak_severity"]) == ("resolved", "warning", "critical")
            steps = c.get(f"/api/v1/alerts/{alert['id']}").json()["transitions"]
            assert [(t["event"], t["severity"], t["cycle"]) for t in steps] == [
                ("opened", "warning", 40), ("escalated", "critical", 41), ("eased", "warning", 43),
                ("resolved", "warning", 46)]
            assert all(t["at"].endswith("Z") and t["reason"] for t in steps)
            assert "clear for 2" in steps[-1]["reason"]
            key = app.key("viewer")
        if request.node.callspec.params["database_url"] == "sqlite":
            _alerts_page_shows_the_memory(app.url, key, alert["id"])
    finally:
        app.stop()


def _alerts_page_shows_the_memory(url: str, key: str, alert_id: int) -> None:
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url + "/ui/signin?next=%2Fui%2Falerts%3Fstatus%3Dresolved")
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/ui/alerts?status=resolved")
            row = page.locator(f'#alerts-list tr[data-alert-id="{alert_id}"]')
            sync_api.expect(row.locator(".alert-peak")).to_have_text("peak critical")
            row.locator(".alert-transitions summary").click()
            items = row.locator(".alert-transitions li")
            sync_api.expect(items).to_have_count(4)
            assert [items.nth(i).get_attribute("data-event") for i in range(4)] == [
                "opened", "escalated", "eased", "resolved"]
            sync_api.expect(items.nth(1)).to_contain_text("critical")
            sync_api.expect(items.nth(1)).to_contain_text("at cycle 41")
        finally:
            browser.close()


def test_a_falling_prediction_never_gives_the_stored_status_a_better_one(store: FleetStore) -> None:
    """The model's RUL falls every cycle; its lower bound jitters across the thresholds (the
    per-prediction status flips back and forth). The engine's stored status never improves."""
    rng = np.random.default_rng(3)
    policy = RulPolicy(StatusThresholds(40, 15), hold=10)
    rul = np.linspace(120, 5, 150)
    lower = np.clip(rul - 30 + rng.normal(0, 4, len(rul)), 0, None)
    store.add_readings([batch("e1", list(range(1, 151)))])
    raw, held = [], []
    for i, (r, lo) in enumerate(zip(rul, lower, strict=True)):
        p = PredictionRecord("e1", i + 1, float(r), float(lo), float(r + 30), 0.9, policy.thresholds.of(lo), "m1")
        store.save_scores([EngineScore("e1", i + 1, p, {"rul_low": None}, None, policy, Debounce(3, 0))])
        raw.append(status_rank(p.status))
        held.append(status_rank(store.get_engine("e1").status))
    assert any(b < a for a, b in itertools.pairwise(raw))  # the raw status does flip back
    assert all(b >= a for a, b in itertools.pairwise(held))
    assert held[-1] == 2
    [alert] = store.list_alerts(engine_id="e1").items
    assert alert["peak_severity"] == "critical" and alert["status"] == "open"
    assert [t["event"] for t in alert["transitions"]] == ["opened", "escalated"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_old_alerts_survive_migration_0004_with_the_history_they_had(kind: str, tmp_path: Path,
                                                                     request: pytest.FixtureRequest) -> None:
    import json

    from sqlalchemy import text

    from prognos.fleet.database import connect, upgrade

    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        import uuid

        url = request.getfixturevalue("postgres_server").create_database(f"m_{uuid.uuid4().hex[:10]}")
    db = connect(url)
    upgrade(db, "0003")
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO engines (id, tags, created_at, n_readings, status) "
                       "VALUES ('e1', '{}', :t, 0, 'critical')"), {"t": "2026-11-20 10:00:00"})
        for status, resolved in (("open", None), ("resolved", "2026-11-20 11:00:00")):
            c.execute(text("INSERT INTO alerts (target_kind, engine_id, kind, severity, status, message, details, "
                           "opened_at, updated_at, resolved_at, resolved_by) VALUES ('engine', 'e1', :k, "
                           "'critical', :s, 'm', :d, :t, :t, :r, :by)"),
                      {"k": "rul_low" if status == "open" else "stuck_sensor", "s": status,
                       "d": json.dumps({"rul": 3.0}), "t": "2026-11-20 10:00:00", "r": resolved,
                       "by": "auto" if resolved else None})
    upgrade(db)
    store = FleetStore(db)
    alerts = {a["kind"]: a for a in store.list_alerts(engine_id="e1").items}
    assert {k: (a["status"], a["peak_severity"], a["details"]) for k, a in alerts.items()} == {
        "rul_low": ("open", "critical", {"rul": 3.0}), "stuck_sensor": ("resolved", "critical", {"rul": 3.0})}
    assert [t["event"] for t in alerts["rul_low"]["transitions"]] == ["opened"]
    assert [t["event"] for t in alerts["stuck_sensor"]["transitions"]] == ["opened", "resolved"]
    assert store.get_engine("e1").status == "critical"
    db.dispose()
