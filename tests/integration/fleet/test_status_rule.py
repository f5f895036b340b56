"""One status rule: ``/api/v1/predict`` and the fleet report the same health status for the same
readings — judged on the interval's lower bound (prognos.status), not on the point RUL."""

from __future__ import annotations

from pathlib import Path

import pytest

from prognos.config import Settings, get_settings
from prognos.serving.service import PredictionService, load_predictor
from prognos.status import health_status
from tests.integration.fleet.conftest import ADMIN_TOKEN, start_live_app
from tests.integration.fleet.readings import engine_readings


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_predict_and_the_fleet_report_the_same_status(fleet_settings: Settings, tiny_bundle: Path) -> None:
    rows = engine_readings()[:60]
    predictor = load_predictor(tiny_bundle, fleet_settings)
    p = predictor.predict_sequences(["e1"], [predictor.validate(rows)])[0]
    assert p.lower < p.rul, "the tiny model's interval must have width for this test"
    # Thresholds that put the point RUL and the lower bound in different bands: by the point
    # estimate this engine is healthy, by the lower bound it is in warning.
    warning = (p.lower + p.rul) / 2
    critical = max(0.0, p.lower - 5.0)
    assert health_status(p.rul, warning, critical) == "healthy"
    assert health_status(p.lower, warning, critical) == "warning"
    settings = get_settings(**{**fleet_settings.model_dump(include={"data_dir", "database_url", "bundle",
                                                                    "log_level", "rate_limit_per_s"}),
                               "admin_token": ADMIN_TOKEN, "warning_rul": warning, "critical_rul": critical})
    app = start_live_app(settings, PredictionService(settings, predictor))
    try:
        with app.client() as c:
            served = c.post("/api/v1/predict", json={"engine_id": "e1", "sensor_data": rows})
            assert served.status_code == 200, served.text
            ingested = c.post("/api/v1/engines/e1/readings", json=rows)
            assert ingested.status_code == 201, ingested.text
            engine = c.get("/api/v1/engines/e1").json()
            (stored,) = c.get("/api/v1/engines/e1/predictions").json()["items"]
    finally:
        app.stop()
    assert served.json()["predicted_rul"] == pytest.approx(engine["rul"], abs=1e-3)  # the same prediction ...
    assert served.json()["status"] == engine["status"] == stored["status"] == "warning"  # ... the same status
