"""The conformance suite, run over every registered network: ONNX-vs-PyTorch parity on real windows,
JSON round-trip of the pipeline, missing-sensor error, short-sequence policy."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from prognos.data.validation import validate_sequence  # noqa: E402
from prognos.errors import ValidationError  # noqa: E402
from prognos.features import FeaturePipeline  # noqa: E402
from prognos.serving.runtime import OnnxRuntime  # noqa: E402
from prognos.training.export import export_onnx, torch_predict  # noqa: E402
from prognos.training.networks import NETWORKS, Ensemble, build_network  # noqa: E402


@pytest.fixture(scope="module")
def real_windows(request):
    """C-MAPSS FD001 windows when the data is here, else synthetic ones."""
    from tests.conftest import cmapss_dir

    path = cmapss_dir()
    if path is not None:
        from prognos.data.cmapss import load_subset

        train = load_subset(path, "FD001", with_test=False).train
    else:
        from prognos.data.synthetic import synthetic_fleet

        train = synthetic_fleet(10, seed=5)
    p = FeaturePipeline(window=30).fit(train)
    w = p.training_windows(train)
    return p, w.x[np.linspace(0, len(w) - 1, 300).astype(int)], train


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_onnx_matches_pytorch(name, real_windows, tmp_path):
    torch.manual_seed(0)
    p, x, _ = real_windows
    model = Ensemble([build_network(name, p.n_features, p.window) for _ in range(2)], cap=125.0).eval()
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, p.window, p.n_features, path)
    onnx_out = OnnxRuntime(path).run(x)
    torch_out = torch_predict(model, x)
    assert onnx_out.shape == (len(x),)
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4)
    # dynamic batch: 1 and many
    np.testing.assert_allclose(OnnxRuntime(path).run(x[:1]), torch_out[:1], atol=1e-4)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_network_trains_one_step(name, real_windows):
    p, x, _ = real_windows
    net = build_network(name, p.n_features, p.window)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    xb = torch.from_numpy(x[:32])
    loss = (net(xb) - 0.5).pow(2).mean()
    loss.backward()
    opt.step()
    assert np.isfinite(float(loss.detach()))


def test_missing_sensor_is_a_validation_error(tiny_bundle):
    from prognos.serving.predictor import Predictor

    pred = Predictor.from_path(tiny_bundle)
    field = pred.spec.required[0]
    reading = {f: (lo + hi) / 2 for f, (lo, hi) in pred.spec.ranges.items()}
    del reading[field]
    with pytest.raises(ValidationError, match=f"sensor_data\\[0\\].{field}: missing"):
        validate_sequence([reading], pred.spec)


def test_short_sequence_gets_a_prediction(tiny_bundle):
    from prognos.serving.predictor import Predictor

    pred = Predictor.from_path(tiny_bundle)
    reading = {f: (lo + hi) / 2 for f, (lo, hi) in pred.spec.ranges.items()}
    out = pred.predict_sequences(["e1"], [pred.validate([reading])])
    assert len(out) == 1 and np.isfinite(out[0].rul)


def test_distilled_student_onnx_matches_pytorch(real_windows, tmp_path):
    """The served network of a default bundle is the distilled student: the same parity on real windows."""
    from prognos.training.config import TrainConfig
    from prognos.training.distill import distill, student_windows

    torch.manual_seed(0)
    p, x, train = real_windows
    few = train.select({e.engine_id for e, _ in zip(train.engines(), range(4), strict=False)})
    teacher = Ensemble([build_network("tcn", p.n_features, p.window) for _ in range(2)], cap=125.0).eval()
    cfg = TrainConfig(folds=2, epochs=1, window=p.window, threads=1)
    sw = student_windows(p, few, p.training_windows(few), cfg.seed)
    student = distill(sw, torch_predict(teacher, sw.x), p.n_features, p.window, cfg).model
    assert len(student.members) == 1 and type(student.members[0]) is NETWORKS[cfg.student]
    path = tmp_path / "student.onnx"
    export_onnx(student, p.window, p.n_features, path)
    np.testing.assert_allclose(OnnxRuntime(path).run(x), torch_predict(student, x), atol=1e-4)
    np.testing.assert_allclose(OnnxRuntime(path).run(x[:1]), torch_predict(student, x[:1]), atol=1e-4)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_gradient_graph_is_torch_autograd_or_declined(name, real_windows, tmp_path):
    from prognos.serving.runtime import GradientRuntime
    from prognos.training.export import gradient_graph, network_from_onnx, torch_gradient

    torch.manual_seed(0)
    p, x, _ = real_windows
    members = [build_network(name, p.n_features, p.window) for _ in range(2)]
    for m in members:  # outputs inside (0, cap): a clipped, flat output would have a zero gradient
        list(m.parameters())[-1].data += 0.5
    model = Ensemble(members, cap=125.0).eval()
    info = gradient_graph(model, p.window, p.n_features, x[:8], tmp_path / "explain.onnx")
    if name in ("lstm", "gru"):
        assert info == {"built": False, "reason": "recurrent layers (explained by occlusion)"}
        assert not (tmp_path / "explain.onnx").exists()
        return
    assert info["built"] and info["steps"] == 2
    runtime = GradientRuntime(tmp_path / "explain.onnx")
    rul, grad = runtime.gradient(x[8:10])
    t_rul, t_grad = torch_gradient(model, x[8:10])
    assert np.abs(t_grad).max() > 1e-3 and np.all((t_rul > 0) & (t_rul < 125.0))
    np.testing.assert_allclose(rul, t_rul, atol=1e-3)
    np.testing.assert_allclose(grad, t_grad, atol=1e-4 * np.abs(t_grad).max())
    # A bundle's network rebuilt from model.onnx's weights (for bundles written before the graph).
    export_onnx(model, p.window, p.n_features, tmp_path / "model.onnx")
    rebuilt = network_from_onnx(tmp_path / "model.onnx", name, {}, p.n_features, p.window, 125.0, members=2)
    np.testing.assert_allclose(torch_predict(rebuilt, x[:16]), torch_predict(model, x[:16]), atol=1e-4)
