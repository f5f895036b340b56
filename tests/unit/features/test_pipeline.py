import json

import numpy as np
import pytest

from prognos.data.synthetic import synthetic_fleet
from prognos.features import FeaturePipeline, piecewise_rul
from prognos.features.pipeline import NotFittedError


def test_piecewise_rul():
    y = piecewise_rul(np.arange(1, 201), cap=125)
    assert y[0] == 125 and y[-1] == 0 and y[-2] == 1
    assert np.all(np.diff(y) <= 0)


def test_learns_sensors_and_regimes_from_data():
    single = FeaturePipeline().fit(synthetic_fleet(20, seed=3))
    assert single.regimes_.n_regimes == 1
    # constant channels and channels without an age trend are dropped, informative ones kept
    for s in ("s1", "s5", "s6", "s10", "s16", "s18", "s19"):
        assert s not in single.sensors_
    assert {"s2", "s4", "s11", "s15"} <= set(single.sensors_)
    assert single.required_fields == single.sensors_  # one regime: settings not needed
    multi = FeaturePipeline().fit(synthetic_fleet(20, seed=3, regimes=6))
    assert multi.regimes_.n_regimes == 6
    assert multi.required_fields[:3] == ["setting_1", "setting_2", "setting_3"]


def test_json_roundtrip_gives_identical_features(synthetic_readings):
    p = FeaturePipeline(window=15).fit(synthetic_readings)
    q = FeaturePipeline.from_json(json.loads(json.dumps(p.to_json())))
    assert q.to_dict() == p.to_dict()
    e = next(synthetic_readings.engines())
    np.testing.assert_array_equal(q.engine_windows(e.values), p.engine_windows(e.values))


def test_fit_uses_training_data_only_and_transform_is_pure(synthetic_readings):
    p = FeaturePipeline().fit(synthetic_readings)
    before = p.to_dict()
    other = synthetic_fleet(5, seed=99)
    p.training_windows(other)
    p.last_windows(other)
    assert p.to_dict() == before


def test_windows_one_per_row_and_short_sequence_policy(synthetic_readings):
    p = FeaturePipeline(window=30).fit(synthetic_readings)
    w = p.training_windows(synthetic_readings)
    assert len(w) == len(synthetic_readings)
    assert w.x.shape[1:] == (30, p.n_features)
    e = next(synthetic_readings.engines())
    one = p.last_window(e.values[:1])
    assert one.shape == (30, p.n_features)
    np.testing.assert_array_equal(one, np.repeat(one[:1], 30, axis=0))  # padded with the first row
    # the window at row t equals the last window of the history up to t
    t = 12
    np.testing.assert_allclose(p.engine_windows(e.values)[t], p.last_window(e.values[: t + 1]))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        FeaturePipeline().to_dict()


def test_real_fd001_selects_the_literature_sensors(cmapss):
    from prognos.data.cmapss import load_subset

    p = FeaturePipeline().fit(load_subset(cmapss, "FD001", with_test=False).train)
    assert p.sensors_ == ["s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21"]
    p2 = FeaturePipeline().fit(load_subset(cmapss, "FD002", with_test=False).train)
    assert p2.regimes_.n_regimes == 6


def _ema_row_by_row(z: np.ndarray, alpha: float) -> np.ndarray:
    """The smoothing's definition, one row at a time (the reference the vectorised scan must match)."""
    out = np.empty_like(z, dtype=np.float64)
    acc = z[0].astype(np.float64)
    for i in range(len(z)):
        acc = alpha * z[i] + (1.0 - alpha) * acc
        out[i] = acc
    return out


@pytest.mark.parametrize("alpha", [0.05, 0.3, 0.7, 0.999])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 50, 500, 1500])
def test_smoothing_matches_the_recurrence(alpha, n):
    from prognos.features.pipeline import _ema

    z = np.random.default_rng(n).standard_normal((n, 14)) * 3 + 1
    got = _ema(z, alpha)
    want = _ema_row_by_row(z, alpha)
    assert got.shape == want.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[0].tolist() == z[0].tolist()  # started at the first reading
    assert _ema(z, 1.0) is z  # alpha 1: no smoothing


def test_served_window_matches_the_row_by_row_smoothing(synthetic_readings):
    from prognos.data.schema import MEASUREMENT_FIELDS

    p = FeaturePipeline(window=30).fit(synthetic_readings)
    engine = next(iter(synthetic_readings.engines()))
    regime = p.regime_of(engine.values)
    raw = engine.values[:, [MEASUREMENT_FIELDS.index(s) for s in p.sensors_]]
    z = (raw - p.mean_[regime]) / p.scale_[regime]
    want = _ema_row_by_row(z, p.smoothing).astype(np.float32)[-30:]
    got = p.last_window(engine.values)
    assert len(engine.values) > 30 and got.dtype == np.float32
    # float32 features: equal up to the float32 rounding of a float64 difference of ~1e-15
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
