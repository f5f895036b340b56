import numpy as np

from prognos.intervals import IntervalCalibration, calibrate


def test_conformal_intervals_cover_at_nominal_level_on_fresh_data():
    rng = np.random.default_rng(0)

    def draw(n):
        pred = rng.uniform(0, 125, n)
        noise = rng.normal(0, 2 + pred / 10, n)  # heteroscedastic: wider at high RUL
        return pred, pred + noise

    pred, true = draw(4000)
    cal = calibrate(pred, true, level=0.9, cap=1e9, bins=4)
    p2, t2 = draw(20000)
    iv = cal.apply(p2)
    coverage = np.mean((t2 >= iv.lower) & (t2 <= iv.upper))
    assert 0.88 <= coverage <= 0.92
    # conditional: intervals are narrower where errors are smaller
    w = iv.upper - iv.lower
    assert w[p2 < 30].mean() < w[p2 > 90].mean()


def test_roundtrip_and_clipping():
    cal = calibrate(np.linspace(0, 125, 500), np.linspace(0, 125, 500) + 3, level=0.8, cap=125.0, bins=2)
    again = IntervalCalibration.from_dict(cal.to_dict())
    assert again == cal
    iv = again.apply(np.array([0.0, 125.0]))
    assert iv.lower.min() >= 0 and iv.upper.max() <= 125


def _draw_with_strata(rng, n):
    """Short histories (< 40 cycles) err three times as much; regime 1 twice as much as regime 0."""
    pred = rng.uniform(80, 200, n)  # far from 0: no clipping at the lower bound
    history = rng.integers(1, 200, n)
    regime = rng.integers(0, 2, n)
    sd = 4.0 * np.where(history < 40, 3.0, 1.0) * np.where(regime == 1, 2.0, 1.0)
    return pred, pred + rng.normal(0, sd), history, regime


def _coverage(iv, true, mask):
    return float(np.mean(((true >= iv.lower) & (true <= iv.upper))[mask]))


def test_cells_by_history_and_regime_cover_each_group_where_bins_alone_do_not():
    rng = np.random.default_rng(1)
    pred, true, history, regime = _draw_with_strata(rng, 20000)
    cal = calibrate(pred, true, 0.9, cap=1e9, bins=4, history=history, regime=regime, history_edges=[40])
    assert set(cal.cells) == {(b, g, r) for b in range(4) for g in range(2) for r in range(2)}
    p2, t2, h2, r2 = _draw_with_strata(rng, 40000)
    conditional = cal.apply(p2, h2, r2)
    pooled = cal.apply(p2)  # no strata given: the bin's quantiles
    for mask in (h2 < 40, h2 >= 40, r2 == 0, r2 == 1):
        assert _coverage(conditional, t2, mask) >= 0.87
    hardest = (h2 < 40) & (r2 == 1)
    assert _coverage(pooled, t2, hardest) < 0.8  # what the cells fix
    assert 0.87 <= _coverage(conditional, t2, hardest) <= 0.93
    # Widen-only: an easy cell keeps its bin's interval (over-covering), a hard one gets its own.
    easy = (h2 >= 40) & (r2 == 0)
    assert _coverage(pooled, t2, easy) > 0.97
    assert np.array_equal(conditional.lower[easy], pooled.lower[easy])
    assert np.all(conditional.upper - conditional.lower >= pooled.upper - pooled.lower - 1e-9)


def test_small_cells_fall_back_to_their_bin_and_cells_round_trip():
    rng = np.random.default_rng(2)
    pred, true, history, regime = _draw_with_strata(rng, 3000)
    regime[:30] = 5  # a rare regime: too few residuals for its own quantiles
    cal = calibrate(pred, true, 0.9, cap=1e9, bins=2, history=history, regime=regime, history_edges=[40])
    assert not any(k[2] == 5 for k in cal.cells)
    rare = cal.apply(pred[:30], history[:30], regime[:30])
    binned = cal.apply(pred[:30])
    assert np.array_equal(rare.lower, binned.lower) and np.array_equal(rare.upper, binned.upper)
    again = IntervalCalibration.from_dict(cal.to_dict())
    assert again == cal


def test_calibrations_written_before_cells_still_load():
    old = {"method": "split-conformal, Mondrian bins of predicted RUL", "level": 0.9, "edges": [50.0],
           "q_lo": [-5.0, -10.0], "q_hi": [4.0, 8.0], "cap": 125.0, "n_residuals": 400}
    cal = IntervalCalibration.from_dict(old)
    iv = cal.apply(np.array([20.0, 100.0]), np.array([10, 100]), np.array([0, 0]))
    assert iv.lower.tolist() == [15.0, 90.0] and iv.upper.tolist() == [24.0, 108.0]


def test_an_interval_always_contains_its_prediction():
    rng = np.random.default_rng(3)
    pred = rng.uniform(20, 100, 2000)
    history = np.where(np.arange(2000) < 1000, 10, 100)
    true = pred + np.where(history < 40, 15.0 + rng.uniform(0, 5, 2000), rng.normal(0, 3, 2000))  # short: all late
    cal = calibrate(pred, true, 0.9, cap=125.0, bins=1, history=history, history_edges=[40])
    assert cal.cells[(0, 0, 0)].q_lo > 0  # every short-history residual is positive
    iv = cal.apply(pred, history)
    assert np.all(iv.lower <= pred) and np.all(pred <= iv.upper)
