"""Alerts end to end over HTTP: rules fire from live predictions, the lifecycle through the API,
no duplicates while one is active, auto-resolve when a new model predicts a higher RUL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prognos.bundle import read_bundle
from prognos.config import Settings
from prognos.data.schema import SENSOR_FIELDS
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService
from tests.integration.fleet.conftest import LiveApp, start_live_app
from tests.integration.fleet.readings import engine_readings


class ConstantRuntime:
    """A model that predicts ``rul`` cycles for every window (stands in for a retrained model)."""

    def __init__(self, rul: float) -> None:
        self.rul = rul

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.rul)


def service_with(settings: Settings, bundle: Path, rul: float) -> PredictionService:
    return PredictionService(settings, Predictor(read_bundle(bundle), runtime=ConstantRuntime(rul)))


def test_lifecycle_through_the_api_and_auto_resolve_on_a_better_model(fleet_settings: Settings,
                                                                      tiny_bundle: Path) -> None:
    pessimistic = service_with(fleet_settings, tiny_bundle, 5.0)
    app = start_live_app(fleet_settings, pessimistic)
    rows = engine_readings()
    try:
        with app.client(app.key("operator")) as c:
            c.post("/api/v1/engines/e1/readings", json=rows[:30]).raise_for_status()
            [alert] = c.get("/api/v1/alerts", params={"engine_id": "e1", "kind": "rul_low"}).json()["items"]
            assert (alert["severity"], alert["status"]) == ("critical", "open")
            assert alert["opened_at"].endswith("Z") and alert["acknowledged_at"] is None
            # still critical on the next readings: the same alert, no duplicate
            c.post("/api/v1/engines/e1/readings", json=rows[30:40]).raise_for_status()
            assert c.get("/api/v1/alerts", params={"engine_id": "e1"}).json()["total"] == 1
            acked = c.post(f"/api/v1/alerts/{alert['id']}/acknowledge").json()
            assert acked["status"] == "acknowledged" and acked["acknowledged_by"].startswith("key:")
            assert c.get("/api/v1/alerts", params={"status": "acknowledged", "severity": "critical"}).json()[
                "total"] == 1
            assert c.get("/api/v1/engines", params={"status": "critical"}).json()["total"] == 1

            low_model = app.service.predictor
            app.service.use(service_with(fleet_settings, tiny_bundle, 120.0).predictor)  # a new, optimistic model
            c.post("/api/v1/engines/e1/readings", json=rows[40:41]).raise_for_status()
            after = c.get(f"/api/v1/alerts/{alert['id']}").json()
            assert (after["status"], after["resolved_by"]) == ("resolved", "auto") and after["resolved_at"]
            assert c.get("/api/v1/engines/e1").json()["status"] == "healthy"

            app.service.use(low_model)  # the condition returns: a NEW alert (the old stays resolved)
            c.post("/api/v1/engines/e1/readings", json=rows[41:42]).raise_for_status()
            items = c.get("/api/v1/alerts", params={"engine_id": "e1"}).json()["items"]
            assert [a["status"] for a in items] == ["open", "resolved"]
            resolved = c.post(f"/api/v1/alerts/{items[0]['id']}/resolve").json()
            assert resolved["status"] == "resolved" and resolved["resolved_by"].startswith("key:")
            assert c.post(f"/api/v1/alerts/{items[0]['id']}/acknowledge").status_code == 409
    finally:
        app.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_warning_uses_the_lower_bound_not_the_point_estimate(fleet_settings: Settings, tiny_bundle: Path) -> None:
    calibration = read_bundle(tiny_bundle).calibration
    warning = fleet_settings.alert_warning_rul
    # a model output whose point estimate is healthy (>= warning) but whose interval reaches below it
    candidates = np.arange(warning, 125.0, 0.5)
    lower = calibration.apply(candidates).lower
    rul = float(candidates[(lower < warning) & (lower >= fleet_settings.alert_critical_rul)][0])
    app = start_live_app(fleet_settings, service_with(fleet_settings, tiny_bundle, rul))
    try:
        with app.client(app.key("operator")) as c:
            c.post("/api/v1/engines/e1/readings", json=engine_readings()[:30]).raise_for_status()
            alerts = c.get("/api/v1/alerts", params={"kind": "rul_low"}).json()["items"]
            engine = c.get("/api/v1/engines/e1").json()
    finally:
        app.stop()
    assert engine["rul"] >= warning > engine["lower"]
    assert [a["severity"] for a in alerts] == ["warning"] and engine["status"] == "warning"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_stuck_sensor_and_missing_cycles_open_and_clear(live: LiveApp) -> None:
    rows = engine_readings()
    n = live.fleet.settings.alert_stuck_readings
    name = next(f for f in live.service.predictor.spec.required if f in SENSOR_FIELDS)
    frozen = [dict(r, **{name: rows[0][name]}) for r in rows[:n]]
    with live.client(live.key("operator")) as c:
        c.post("/api/v1/engines/e1/readings", json=frozen).raise_for_status()
        [stuck] = c.get("/api/v1/alerts", params={"kind": "stuck_sensor"}).json()["items"]
        assert name in stuck["message"] and stuck["severity"] == "warning"
        c.post("/api/v1/engines/e1/readings", json=rows[n:n + 1]).raise_for_status()  # it moves again
        assert c.get(f"/api/v1/alerts/{stuck['id']}").json()["status"] == "resolved"

        c.post("/api/v1/engines/e2/readings", json=rows[:5] + rows[9:12]).raise_for_status()
        [gap] = c.get("/api/v1/alerts", params={"kind": "missing_cycles"}).json()["items"]
        assert "6-9" in gap["message"] and gap["engine_id"] == "e2"
        c.post("/api/v1/engines/e2/readings", json=rows[5:9]).raise_for_status()  # late delivery fills it
        assert c.get(f"/api/v1/alerts/{gap['id']}").json()["status"] == "resolved"
