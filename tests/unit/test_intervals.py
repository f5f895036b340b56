import itertools

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


def _jumpy_calibration(late_life: float | None = None) -> IntervalCalibration:
    """Residuals that make a bin's lower offset jump by more than the bin is wide (the issue's engine
    at 52.4-63.1 'warning', at 47.9-52.4 'healthy'), with cells in some bins only."""
    rng = np.random.default_rng(7)
    pred = rng.uniform(0, 125, 30000)
    sd = np.where((pred > 50) & (pred < 65), 25.0, 3.0)  # one bin of wild errors among tame ones
    true = np.clip(pred + rng.normal(0, sd), 0, 125)
    history = rng.integers(1, 200, len(pred))
    regime = rng.integers(0, 3, len(pred))
    hard = (history < 40) & (regime == 2) & (pred > 90)  # a context that is wide only at high predictions
    true[hard] = np.clip(pred[hard] + rng.normal(0, 30, hard.sum()), 0, 125)
    return calibrate(pred, true, 0.9, 125.0, bins=8, history=history, regime=regime, history_edges=[40],
                     min_cell=50, late_life=late_life)


def test_the_lower_bound_never_falls_as_the_prediction_rises_in_any_cell() -> None:
    """Property: over a dense grid of predictions, in every context (history group x regime, and
    none), the lower bound is non-decreasing. The status comes from the lower bound: an engine
    predicted worse must never look healthier."""
    for late_life in (None, 50.0):
        cal = _jumpy_calibration(late_life)
        assert len(cal.cells) > 0 and len({k[1:] for k in cal.cells}) == 6
        grid = np.linspace(-5, 140, 5801)
        contexts = [(None, None)] + [(np.full(len(grid), h), np.full(len(grid), r))
                                     for h in (1, 39, 40, 500) for r in range(4)]
        for history, regime in contexts:
            lower = cal.apply(grid, history, regime).lower
            assert np.all(np.diff(lower) >= -1e-9), (history is None or history[0], regime is None or regime[0])
        # A falling prediction never gives a better status.
        from prognos.status import StatusThresholds, status_rank

        th = StatusThresholds(40, 15)
        ranks = [status_rank(th.of(v)) for v in cal.apply(grid[::-1]).lower]
        assert all(b >= a for a, b in itertools.pairwise(ranks))


def test_the_step_function_of_old_calibrations_is_what_the_property_rules_out() -> None:
    cal = _jumpy_calibration()
    old = IntervalCalibration.from_dict({**cal.to_dict(), "centers": []})  # written before centres
    lower = old.apply(np.linspace(0, 125, 5001)).lower
    assert np.any(np.diff(lower) < -1.0)  # the jump an engine getting worse would be told "healthy" by


def test_late_life_widens_the_lower_tail_where_late_windows_fall() -> None:
    """Truth below the lower bound among late-life windows (true RUL < 50): at most the nominal
    tail with late_life, far more without, on fresh data of a model that is late in late life."""
    rng = np.random.default_rng(8)

    def draw(n):
        true = rng.uniform(0, 125, n)
        late_bias = np.where(true < 50, 12.0, 0.0)  # the model reads failing engines too late
        return np.clip(true + late_bias + rng.normal(0, 6 + true / 20, n), 0, 125), true

    pred, true = draw(30000)
    p2, t2 = draw(60000)
    late = t2 < 50
    plain = calibrate(pred, true, 0.9, 125.0, bins=4).apply(p2)
    tail = calibrate(pred, true, 0.9, 125.0, bins=4, late_life=50).apply(p2)
    assert np.mean(t2[late] < plain.lower[late]) > 0.08
    assert np.mean(t2[late] < tail.lower[late]) <= 0.055
    assert IntervalCalibration.from_dict(calibrate(pred, true, 0.9, 125.0, late_life=50).to_dict()).late_life == 50
