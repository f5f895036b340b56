"""``explain=true`` on REST predict, on the tiny trained bundle (a real ONNX network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prognos.config import Settings
from prognos.data.schema import CHANNELS
from prognos.serving.http import create_app
from prognos.serving.http.auth import TokenAuthenticator
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService
from tests.unit.serving.asgi import call
from tests.unit.serving.factory import body


def test_rest_predict_explains_on_request_and_the_numbers_add_up(settings: Settings, predictor: Predictor,
                                                                  tiny_bundle: Path) -> None:
    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator("s3cret"))
    plain = call(app, "POST", "/api/v1/predict", json=body(tiny_bundle, n=40))
    assert plain.status_code == 200, plain.text
    assert "explanation" not in plain.json()  # off by default
    r = call(app, "POST", "/api/v1/predict?explain=true", json=body(tiny_bundle, n=40))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["predicted_rul"] == pytest.approx(plain.json()["predicted_rul"], abs=1e-3)
    e = got["explanation"]
    assert e["method"] == "occlusion" and "training mean" in e["baseline"] and "interaction" in e["relation"]
    sensors = predictor.pipeline.sensors_ or []
    assert sorted(c["field"] for c in e["contributions"]) == sorted(sensors)
    assert {c["field"]: c["name"] for c in e["contributions"]} == {s: CHANNELS[s].name for s in sensors}
    total = e["baseline_rul"] + sum(c["contribution"] for c in e["contributions"]) + e["interaction"]
    assert total == pytest.approx(e["model_rul"], abs=0.01)
    # The served RUL is the network's output after the age correction.
    assert got["predicted_rul"] == pytest.approx(
        float(predictor.correction.apply(np.array([e["model_rul"]]), np.array([got["last_cycle"]]))[0]), abs=0.01)
    # Each contribution is what the model says when that channel is at its baseline.
    x = predictor.window_of(predictor.validate(body(tiny_bundle, n=40)["sensor_data"]))
    top = e["contributions"][0]
    occluded = x.copy()
    occluded[:, sensors.index(top["field"])] = 0.0
    assert top["contribution"] == pytest.approx(e["model_rul"] - float(predictor.predict_windows(occluded[None])[0]),
                                                abs=0.01)
    spans = e["spans"]
    assert spans and spans[-1]["cycles_ago_to"] == 0 and spans[-1]["last_cycle"] == got["last_cycle"]
    assert spans[0]["cycles_ago_from"] == predictor.window - 1


def test_batch_predict_explains_every_engine(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator("s3cret"))
    reqs = [body(tiny_bundle, f"e{i}", n=35, engine=i) for i in range(3)]
    r = call(app, "POST", "/api/v1/predict/batch?explain=true", json={"requests": reqs})
    assert r.status_code == 200, r.text
    out = r.json()["responses"]
    assert [o["engine_id"] for o in out] == ["e0", "e1", "e2"]
    assert all(len(o["explanation"]["contributions"]) == predictor.pipeline.n_features for o in out)
    assert len({o["explanation"]["model_rul"] for o in out}) == 3  # each engine its own


def test_a_bad_explain_value_is_a_422_naming_it(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator("s3cret"))
    r = call(app, "POST", "/api/v1/predict?explain=maybe", json=body(tiny_bundle))
    assert r.status_code == 422 and "explain" in r.json()["detail"]


def test_the_bundle_carries_global_importance_for_the_models_page(predictor: Predictor) -> None:
    g = predictor.bundle.manifest.model_dump()["explanations"]
    sensors = predictor.pipeline.sensors_ or []
    assert sorted(c["field"] for c in g["channels"]) == sorted(sensors)
    values = [c["mean_abs_contribution"] for c in g["channels"]]
    assert values == sorted(values, reverse=True) and values[0] > 0
    assert g["method"] == "occlusion" and "training engines" in g["source"]  # the tiny bundle holds none out
