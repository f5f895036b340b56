"""The lifecycle's seams to the fleet: the in-memory fakes behave like the fleet's implementation
(the same ground-truth computations on both), and monitoring raises model-level alerts through it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from prognos.config import get_settings
from prognos.errors import ConflictError, NotFoundError
from prognos.fleet import build_fleet
from prognos.fleet.records import EngineScore, PredictionRecord, ReadingBatch
from prognos.lifecycle.feedback import model_performance, record_failure, save_shadow
from prognos.lifecycle.ports import FakeFleet, FakeGroundTruth, FleetPort, GroundTruth, ModelAlert, ShadowPair


def _fleet_ground_truth(tmp_path: Path) -> GroundTruth:
    store = build_fleet(get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}")).store
    store.add_readings([ReadingBatch("e1", np.arange(1, 41), np.ones((40, 24)))])
    store.save_scores([EngineScore("e1", c, PredictionRecord("e1", c, r, r - 5, r + 5, 0.9, "healthy", "v1"), {})
                       for c, r in ((20, 70.0), (40, 50.0))])
    return store


def _fake_ground_truth() -> GroundTruth:
    return FakeGroundTruth(engines={"e1": 40}, predictions=[("e1", 20, "v1", 70.0), ("e1", 40, "v1", 50.0)])


@pytest.mark.parametrize("make", ["fleet", "fake"])
def test_fake_and_fleet_ground_truth_agree(make: str, tmp_path: Path) -> None:
    gt = _fleet_ground_truth(tmp_path) if make == "fleet" else _fake_ground_truth()
    with pytest.raises(NotFoundError):
        record_failure(gt, "ghost", 50, "op")
    result = record_failure(gt, "e1", 90, "op")
    assert result.created and not record_failure(gt, "e1", 90, "op2").created
    with pytest.raises(ConflictError):
        record_failure(gt, "e1", 91, "op")
    (v1,) = result.performance
    assert v1.errors.n == 2 and v1.errors.rmse == pytest.approx(0.0)  # 70 at 20, 50 at 40 -> failed at 90
    save_shadow(gt, [ShadowPair("e1", 40, "v1", 50.0, "v2", 55.0)])
    (shadow,) = model_performance(gt).shadow
    assert (shadow.n_pairs, shadow.n_evaluated) == (1, 1)
    assert shadow.candidate is not None and shadow.candidate.mae == pytest.approx(5.0)  # capped truth: 50


def test_the_fleet_implements_the_fleet_port_with_model_alerts(tmp_path: Path) -> None:
    fleet = build_fleet(get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}"))
    port: FleetPort = fleet
    fake: FleetPort = FakeFleet()

    async def scenario(p: FleetPort) -> None:
        await p.raise_model_alert(ModelAlert("v1", "drift", "warning", "drifted"))
        await p.raise_model_alert(ModelAlert("v1", "drift", "critical", "drifted more"))
        await p.resolve_model_alert("v1", "drift")
        await p.resolve_model_alert("v1", "drift")  # nothing active: a no-op

    asyncio.run(scenario(port))
    asyncio.run(scenario(fake))
    (alert,) = fleet.store.list_alerts().items
    assert (alert["target_kind"], alert["model_version"], alert["engine_id"]) == ("model", "v1", None)
    assert (alert["severity"], alert["status"], alert["resolved_by"]) == ("critical", "resolved", "auto")
    assert [c.event for c in fleet.notifier.changes] == ["opened", "escalated", "resolved"]  # type: ignore[attr-defined]
    assert [e[0] for e in fake.events] == ["opened", "changed", "resolved"]  # type: ignore[attr-defined]
    assert fleet.store.list_engines().total == 0
    fleet.db.dispose()
