"""Replaying run-to-failure engines into the live app: a critical alert must open before the
engine's last cycle (its failure). Always: a synthetic engine the tiny model never saw. With the
C-MAPSS files: an FD001 training engine held out of a small FD001 model (a 2-member TCN, ~1 min)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prognos.config import Settings
from prognos.data.cmapss import load_subset
from prognos.serving.service import PredictionService, load_predictor
from tests.integration.fleet.conftest import start_live_app
from tests.integration.fleet.readings import engine_readings, reading_dicts


def replay(settings: Settings, service: PredictionService, engine_id: str, rows: list[dict[str, Any]],
           step: int = 5) -> int | None:
    """Send ``rows`` ``step`` cycles at a time; the cycle at which a critical alert first is open."""
    app = start_live_app(settings, service)
    try:
        with app.client(app.key("operator")) as c:
            for i in range(0, len(rows), step):
                c.post(f"/api/v1/engines/{engine_id}/readings", json=rows[i:i + step]).raise_for_status()
                critical = c.get("/api/v1/alerts", params={"engine_id": engine_id, "kind": "rul_low",
                                                           "severity": "critical", "status": "open"}).json()
                if critical["total"]:
                    return int(critical["items"][0]["details"]["cycle"])
    finally:
        app.stop()
    return None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_synthetic_engine_raises_a_critical_alert_before_failure(fleet_settings: Settings,
                                                                 service: PredictionService) -> None:
    rows = engine_readings(seed=99)  # not in the tiny model's training fleet (seed 1)
    last = rows[-1]["cycle"]
    opened = replay(fleet_settings, service, "synthetic-1", rows)
    assert opened is not None, "no critical alert during the whole run to failure"
    assert opened < last
    # and not while the engine is still healthy (its degradation starts at 40 % of its life)
    assert opened > 0.5 * last


@pytest.mark.cmapss
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cmapss_fd001_training_engine_raises_a_critical_alert_before_failure(
        cmapss: Path, fleet_settings: Settings, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    train = load_subset(cmapss, "FD001", with_test=False).train
    held_out = "1"
    others = {str(e) for e in set(train.engine_ids.tolist())} - {held_out}
    cfg = TrainConfig(model="tcn", folds=2, epochs=8, patience=8, holdout=0.0, threads=2, seed=0,
                      serve="ensemble")  # about alerts, not the student: skip distillation
    bundle = tmp_path / "fd001"
    train_bundle_from_readings(train.select(others), "FD001", bundle, cfg, log=lambda m: None)
    service = PredictionService(fleet_settings, load_predictor(bundle, fleet_settings))
    engine = next(e for e in train.engines() if e.engine_id == held_out)
    rows = reading_dicts(engine)
    opened = replay(fleet_settings, service, "fd001-1", rows)
    assert opened is not None, "no critical alert during engine 1's run to failure"
    assert opened < rows[-1]["cycle"]
