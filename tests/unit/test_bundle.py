import json

import numpy as np
import pytest

from prognos.bundle import read_bundle
from prognos.errors import BundleError
from prognos.serving.predictor import Predictor


def test_bundle_manifest_is_complete(tiny_bundle):
    b = read_bundle(tiny_bundle)
    m = b.manifest
    for key in ("version", "dataset", "created_at", "input_fields", "window", "rul_cap", "calibration",
                "validation_metrics", "training_seconds", "files"):
        assert getattr(m, key) not in (None, "", {}, [])
    assert {"model.onnx", "preprocessing.json"} <= set(m.files)
    assert all(len(h) == 64 for h in m.files.values())


def test_tampered_model_is_refused(tiny_bundle_copy_factory):
    b = tiny_bundle_copy_factory()
    data = bytearray((b / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (b / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.onnx does not match its SHA-256"):
        read_bundle(b)


def test_tampered_manifest_is_refused(tiny_bundle_copy_factory):
    b = tiny_bundle_copy_factory()
    m = json.loads((b / "bundle.json").read_text())
    m["rul_cap"] = 500
    (b / "bundle.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="manifest checksum mismatch"):
        read_bundle(b)


def test_incomplete_bundle_is_refused(tiny_bundle_copy_factory, tmp_path):
    b = tiny_bundle_copy_factory()
    (b / "preprocessing.json").unlink()
    with pytest.raises(BundleError, match=r"preprocessing\.json is missing"):
        read_bundle(b)
    with pytest.raises(BundleError, match="no such bundle directory"):
        read_bundle(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"bundle\.json is missing"):
        read_bundle(tmp_path / "empty")


def test_predictor_from_bundle(tiny_bundle, synthetic_readings):
    p = Predictor.from_path(tiny_bundle)
    preds = p.predict_readings(synthetic_readings)
    assert len(preds) == synthetic_readings.n_engines
    for q in preds:
        assert 0 <= q.lower <= q.rul <= q.upper <= p.bundle.manifest.rul_cap or q.lower <= q.rul
        assert q.model_version == p.version
    engines = list(synthetic_readings.engines())
    x = np.stack([p.window_of(e.values) for e in engines])
    # Served RUL = the model's output moved by the bundle's age correction at the last cycle.
    assert not p.correction.is_identity
    ages = np.array([e.cycles[-1] for e in engines])
    np.testing.assert_allclose(p.correction.apply(p.predict_windows(x), ages), [q.rul for q in preds])


def test_age_is_the_last_cycle_number_else_the_history_length(tiny_bundle, synthetic_readings):
    p = Predictor.from_path(tiny_bundle)
    e = next(iter(synthetic_readings.engines()))
    recent = p.strata([e.values[-10:]], [e.cycles[-10:]])
    assert recent.age[0] == e.cycles[-1] and recent.history[0] == 10
    assert p.strata([e.values[-10:]], [None]).age[0] == 10
