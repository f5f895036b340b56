"""``GET /api/v1/engines/{id}?explain=true`` over real HTTP: the engine's current prediction explained
on its stored readings, off by default."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ValidSequence
from tests.integration.fleet.conftest import LiveApp
from tests.integration.fleet.readings import engine_readings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_the_latest_prediction_is_explained_on_request(live: LiveApp) -> None:
    rows = engine_readings()[:70]
    with live.client(live.key("operator")) as c:
        assert c.post("/api/v1/engines/e-9/readings", json=rows).status_code == 201
        viewer = live.key("viewer")
    with live.client(viewer) as c:
        plain = c.get("/api/v1/engines/e-9").json()["latest_prediction"]
        r = c.get("/api/v1/engines/e-9", params={"explain": "true"})
        bad = c.get("/api/v1/engines/e-9", params={"explain": "perhaps"})
    assert "explanation" not in plain  # off by default: the fleet's hot path never pays for it
    assert r.status_code == 200, r.text
    latest = r.json()["latest_prediction"]
    e = latest["explanation"]
    # It explains the prediction the engine shows: same readings, same model.
    assert e["predicted_rul"] == pytest.approx(latest["rul"], abs=1e-3) and e["last_cycle"] == latest["cycle"] == 70
    assert e["model_version"] == latest["model_version"] and e["method"] == "occlusion"
    fields = live.service.predictor.pipeline.sensors_ or []
    assert sorted(c["field"] for c in e["contributions"]) == sorted(fields)
    # The engine's history as scoring reads it (its latest readings) through the service: the same numbers.
    history = rows[-live.service.history_readings():]
    values = [[row.get(f, float("nan")) for f in MEASUREMENT_FIELDS] for row in history]
    seq = ValidSequence(np.array(values), np.array([row["cycle"] for row in history]))
    direct = asyncio.run(live.service.predict_valid(["e-9"], [seq], explain=True))[0].explanation
    assert direct is not None
    assert [c["contribution"] for c in e["contributions"]] == [c.to_dict()["contribution"]
                                                               for c in direct.contributions]
    assert bad.status_code == 422 and "explain" in bad.json()["detail"]


def test_an_engine_without_predictions_has_nothing_to_explain(live: LiveApp) -> None:
    with live.client(live.key("operator")) as c:
        assert c.put("/api/v1/engines/e-new", json={"tags": {"site": "x"}}).status_code == 200
        r = c.get("/api/v1/engines/e-new", params={"explain": "true"})
    assert r.status_code == 200 and r.json()["latest_prediction"] is None
