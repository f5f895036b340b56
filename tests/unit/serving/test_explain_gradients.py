"""Integrated gradients through the bundle's gradient graph (``explain.onnx``), on the tiny trained
bundle: the graph is torch autograd's gradient, the served attributions are the path integral, and
bundles without the graph explain by occlusion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prognos.bundle import GRADIENT_FILE, _manifest_digest, read_bundle, sha256_file
from prognos.config import Settings
from prognos.serving.explain import Explainer
from prognos.serving.http import create_app
from prognos.serving.http.auth import TokenAuthenticator
from prognos.serving.predictor import Predictor
from prognos.serving.runtime import GradientRuntime
from prognos.serving.service import PredictionService, load_predictor
from tests.unit.serving.asgi import call
from tests.unit.serving.factory import body


def _windows(predictor: Predictor, tiny_bundle: Path, n: int) -> np.ndarray:
    return np.stack([predictor.window_of(predictor.validate(body(tiny_bundle, f"e{i}", n=40, engine=i)["sensor_data"]))
                     for i in range(n)])


def test_the_gradient_graph_is_torch_autograd_of_the_served_network(tiny_bundle: Path) -> None:
    pytest.importorskip("torch")
    from prognos.training.export import network_from_onnx, torch_gradient

    bundle = read_bundle(tiny_bundle)
    assert bundle.gradient_path is not None and bundle.manifest.files[GRADIENT_FILE] == sha256_file(
        bundle.gradient_path)
    assert bundle.manifest.model["gradient_graph"]["built"] is True
    predictor = Predictor(bundle)
    m = bundle.manifest.model
    # The network rebuilt from model.onnx's weights answers as model.onnx does ...
    net = network_from_onnx(bundle.model_path, m["name"], m.get("params") or {}, predictor.pipeline.n_features,
                            predictor.window, predictor.pipeline.rul_cap, m.get("members", 1))
    runtime = GradientRuntime(bundle.gradient_path)
    x = _windows(predictor, bundle.path, runtime.steps)
    rul, grad = runtime.gradient(x)
    t_rul, t_grad = torch_gradient(net, x)
    np.testing.assert_allclose(t_rul, predictor.predict_windows(x), atol=1e-3)
    # ... and the gradient graph is its gradient.
    np.testing.assert_allclose(rul, t_rul, atol=1e-3)
    assert np.abs(t_grad).max() > 1e-3  # a network that is not flat here: the comparison means something
    np.testing.assert_allclose(grad, t_grad, atol=1e-4 * np.abs(t_grad).max())


def test_integrated_gradients_are_complete_for_a_quadratic_network() -> None:
    # f(x) = b + sum(w * x) + sum(q * x^2): its gradient is linear along the path, so the midpoint
    # rule integrates it exactly with any number of steps: the residual must be 0.
    rng = np.random.default_rng(0)
    window, n = 6, 3
    w, q, b = rng.normal(size=(window, n)), rng.normal(size=(window, n)), 50.0

    def gradient(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return b + (x * w + q * x**2).sum((1, 2)), w + 2 * q * x

    x = rng.normal(size=(window, n)).astype(np.float32)
    fx = float(b + (x * w + q * x**2).sum())
    ex = Explainer(["s2", "s3", "s4"], window, b, "integrated_gradients", spans=2, gradient=gradient, steps=2)
    (e,) = ex.read(x[None], np.array([fx]))
    assert e.interaction == pytest.approx(0.0, abs=1e-4)
    assert e.baseline_rul + sum(c.contribution for c in e.contributions) == pytest.approx(fx, abs=1e-4)
    exact = (x * w + q * x**2).sum(0)  # each channel's own terms
    want = dict(zip(["s2", "s3", "s4"], exact, strict=True))
    assert {c.field: c.contribution for c in e.contributions} == pytest.approx(want, abs=1e-4)
    assert sum(s.contribution for s in e.spans) == pytest.approx(fx - b, abs=1e-4)


def test_served_integrated_gradients_are_the_path_integral_of_the_graph(settings: Settings, tiny_bundle: Path
                                                                         ) -> None:
    predictor = load_predictor(tiny_bundle, settings.model_copy(update={"explain_method": "integrated_gradients"}))
    assert predictor.explainer.method == "integrated_gradients"
    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator("s3cret"))
    r = call(app, "POST", "/api/v1/predict?explain=true", json=body(tiny_bundle, n=40))
    assert r.status_code == 200, r.text
    e = r.json()["explanation"]
    assert e["method"] == "integrated_gradients" and "completeness" in e["relation"]
    total = e["baseline_rul"] + sum(c["contribution"] for c in e["contributions"]) + e["interaction"]
    assert total == pytest.approx(e["model_rul"], abs=0.01)
    # Each channel's contribution: x times the gradient averaged over the path's midpoints, summed over time.
    x = predictor.window_of(predictor.validate(body(tiny_bundle, n=40)["sensor_data"])).astype(np.float64)
    runtime = GradientRuntime(read_bundle(tiny_bundle).gradient_path)  # type: ignore[arg-type]
    alphas = (np.arange(runtime.steps) + 0.5) / runtime.steps
    _, grad = runtime.gradient(np.stack([a * x for a in alphas]).astype(np.float32))
    expected = (grad.mean(0) * x).sum(0)
    sensors = predictor.pipeline.sensors_ or []
    assert {c["field"]: c["contribution"] for c in e["contributions"]} == pytest.approx(
        dict(zip(sensors, expected, strict=True)), abs=2e-3)
    assert sum(s["contribution"] for s in e["spans"]) == pytest.approx(expected.sum(), abs=0.01)


def test_a_bundle_without_the_graph_explains_by_occlusion(settings: Settings, tiny_bundle_copy_factory) -> None:
    old = tiny_bundle_copy_factory("old")
    data = json.loads((old / "bundle.json").read_text())
    del data["files"][GRADIENT_FILE]
    data["manifest_sha256"] = _manifest_digest(data)
    (old / "bundle.json").write_text(json.dumps(data))
    (old / GRADIENT_FILE).unlink()
    predictor = load_predictor(old, settings.model_copy(update={"explain_method": "integrated_gradients"}))
    assert read_bundle(old).gradient_path is None
    assert predictor.explainer.method == "occlusion"
