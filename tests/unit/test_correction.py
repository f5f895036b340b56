"""The age correction: fitted on out-of-fold predictions, it must learn what age says about RUL,
stay bounded where it has no data, and round-trip through the bundle's JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prognos.correction import MAX_SHIFT, MAX_SLOPE, MIN_SLOPE, AgeCorrection, select_correction

CAP = 125.0


def _aged_data(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model that reads RUL too low on old engines and too high on young ones (cycles)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(1, 300, n)
    truth = rng.uniform(0, CAP, n)
    pred = np.clip(truth - 0.08 * (age - 150) + rng.normal(0, 4, n), 0, CAP)
    return pred, age, truth


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_fit_learns_the_age_effect_on_unseen_data() -> None:
    pred, age, truth = _aged_data()
    corr = AgeCorrection.fit(pred, age, truth, CAP)
    p2, a2, t2 = _aged_data(seed=1)
    fixed = corr.apply(p2, a2)
    assert _rmse(fixed, t2) < 0.8 * _rmse(p2, t2)
    assert fixed.min() >= 0 and fixed.max() <= CAP


def test_no_extrapolation_beyond_the_outer_knots() -> None:
    pred, age, truth = _aged_data()
    corr = AgeCorrection.fit(pred, age, truth, CAP)
    p = np.full(3, 60.0)
    at_edge = corr.apply(p, np.full(3, corr.age_knots[-1]))
    np.testing.assert_allclose(corr.apply(p, np.array([1e4, 1e6, 1e9])), at_edge)
    np.testing.assert_allclose(corr.apply(np.array([500.0, -50.0]), np.array([100.0, 100.0])),
                               corr.apply(np.array([CAP, 0.0]), np.array([100.0, 100.0])))


def test_thin_data_stays_near_the_identity_and_too_little_is_none() -> None:
    rng = np.random.default_rng(3)
    pred = rng.uniform(0, CAP, 300)
    age = rng.uniform(1, 300, 300)
    corr = AgeCorrection.fit(pred, age, pred, CAP)  # a perfect model: nothing to correct
    assert np.max(np.abs(corr.apply(pred, age) - pred)) < 2.0
    assert AgeCorrection.fit(pred[:50], age[:50], pred[:50], CAP).is_identity


def test_json_round_trip_and_identity() -> None:
    pred, age, truth = _aged_data()
    corr = AgeCorrection.fit(pred, age, truth, CAP)
    back = AgeCorrection.from_dict(json.loads(json.dumps(corr.to_dict())))
    np.testing.assert_allclose(back.apply(pred, age), corr.apply(pred, age))
    assert back.prior == "every-cycle" and back.n == len(pred) and back.age_from == "readings"
    ident = AgeCorrection.from_dict({})  # bundles written before the correction
    assert ident.is_identity and ident.to_dict() == {}
    np.testing.assert_array_equal(ident.apply(pred, age), pred)


@pytest.mark.parametrize("broken", [
    {"values": [[1.0, 2.0]]},
    {"age_knots": [10.0, 5.0]},
])
def test_from_dict_refuses_a_broken_table(broken: dict[str, object]) -> None:
    pred, age, truth = _aged_data()
    d = {**AgeCorrection.fit(pred, age, truth, CAP).to_dict(), **broken}
    with pytest.raises(ValueError, match="correction"):
        AgeCorrection.from_dict(d)


def test_bundles_written_before_age_from_read_the_cycle_field() -> None:
    pred, age, truth = _aged_data()
    d = AgeCorrection.fit(pred, age, truth, CAP).to_dict()
    del d["age_from"]
    assert AgeCorrection.from_dict(d).age_from == "cycle"
    with pytest.raises(ValueError, match="age_from"):
        AgeCorrection.from_dict({**d, "age_from": "calendar"})


@pytest.mark.parametrize("slope", [-1.0, 0.0, 3.0])
def test_the_table_is_monotone_in_the_prediction_with_bounded_slope_and_shift(slope: float) -> None:
    """Even fitted to a truth that falls (or jumps) as the prediction rises, a falling prediction
    never gives a rising corrected RUL, and no step is amplified beyond MAX_SLOPE."""
    rng = np.random.default_rng(4)
    pred = rng.uniform(0, CAP, 6000)
    age = rng.uniform(1, 100, 6000)
    truth = np.clip(60 + slope * (pred - 60) + 0.3 * (age - 50), 0, CAP)
    corr = AgeCorrection.fit(pred, age, truth, CAP)
    grid = np.linspace(0, CAP, 2001)
    for a in np.linspace(1, 100, 25):
        g = corr.apply(grid, np.full_like(grid, a))
        step = np.diff(g) / np.diff(grid)
        assert step.min() >= MIN_SLOPE - 1e-6 or np.all(np.diff(g) >= -1e-9)  # clipping at 0/cap flattens
        assert np.all(np.diff(g) >= -1e-9) and step.max() <= MAX_SLOPE + 1e-6
        assert np.max(np.abs(g - grid)) <= MAX_SHIFT + 1e-6


def _engines(n_engines: int, age_effect: float, seed: int) -> tuple[np.ndarray, ...]:
    """Every cycle of run-to-failure engines; the model errs by ``age_effect`` per cycle of age."""
    rng = np.random.default_rng(seed)
    ids, age, truth = [], [], []
    for e in range(n_engines):
        life = int(rng.integers(130, 300))
        ids.append(np.full(life, e))
        age.append(np.arange(1, life + 1))
        truth.append(np.minimum(life - np.arange(1, life + 1), CAP))
    age_a, truth_a = np.concatenate(age).astype(float), np.concatenate(truth).astype(float)
    pred = np.clip(truth_a - age_effect * (np.minimum(age_a, 100) - 50) + rng.normal(0, 6, len(age_a)), 0, CAP)
    return pred, truth_a, np.concatenate(ids), age_a


def test_select_keeps_a_correction_that_helps_every_age_bin_and_drops_one_that_does_not() -> None:
    pred, truth, ids, age = _engines(80, 0.3, seed=5)
    kept = select_correction(pred, truth, ids, np.minimum(age, 100), age, CAP)
    assert kept.kept and not kept.correction.is_identity
    assert all(r["rmse_with"] < r["rmse_without"] for r in kept.by_age)
    # A calibrated model (the truth scatters around the prediction whatever the age): the table can
    # only fit noise, which does not carry over to held-out engines.
    rng = np.random.default_rng(6)
    pred = rng.uniform(10, 110, len(truth))
    dropped = select_correction(pred, pred + rng.normal(0, 6, len(pred)), ids, np.minimum(age, 100), age, CAP)
    assert not dropped.kept and dropped.correction.is_identity
    assert dropped.to_dict()["kept"] is False and len(dropped.by_age) >= 4


def test_beyond_the_fleets_history_the_table_is_the_identity_reached_without_a_jump() -> None:
    """The fleet sends 100 readings: an age of 100 only says "at least 100". The table learns from
    younger windows and leaves older engines exactly as the network predicts them."""
    pred, truth, ids, age = _engines(60, 0.3, seed=7)
    corr = AgeCorrection.fit(pred, np.minimum(age, 100), truth, CAP, max_age=100)
    assert corr.age_knots[-1] == 100 and corr.age_knots[-2] < 100
    grid = np.linspace(0, CAP, 251)
    np.testing.assert_allclose(corr.apply(grid, np.full_like(grid, 100)), grid, atol=1e-6)
    np.testing.assert_allclose(corr.apply(grid, np.full_like(grid, 5000)), grid, atol=1e-6)
    near = corr.apply(grid, np.full_like(grid, 99.5))
    assert np.max(np.abs(near - grid)) < 1.0  # fades in: no jump at the 100th reading
    assert not corr.is_identity
    choice = select_correction(pred, truth, ids, np.minimum(age, 100), age, CAP, max_age=100)
    old = [r for r in choice.by_age if not r["acts"]]
    assert old and all(r["rmse_with"] == r["rmse_without"] for r in old)
