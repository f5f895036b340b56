"""The age correction: fitted on out-of-fold predictions, it must learn what age says about RUL,
stay bounded where it has no data, and round-trip through the bundle's JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prognos.correction import TEST_LIKE_MIN_HISTORY, TEST_LIKE_RUL, AgeCorrection, prior_mask

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
    corr = AgeCorrection.fit(pred, age, truth, CAP, "test-like")
    p2, a2, t2 = _aged_data(seed=1)
    fixed = corr.apply(p2, a2)
    assert _rmse(fixed, t2) < 0.8 * _rmse(p2, t2)
    assert fixed.min() >= 0 and fixed.max() <= CAP


def test_no_extrapolation_beyond_the_outer_knots() -> None:
    pred, age, truth = _aged_data()
    corr = AgeCorrection.fit(pred, age, truth, CAP, "test-like")
    p = np.full(3, 60.0)
    at_edge = corr.apply(p, np.full(3, corr.age_knots[-1]))
    np.testing.assert_allclose(corr.apply(p, np.array([1e4, 1e6, 1e9])), at_edge)
    np.testing.assert_allclose(corr.apply(np.array([500.0, -50.0]), np.array([100.0, 100.0])),
                               corr.apply(np.array([CAP, 0.0]), np.array([100.0, 100.0])))


def test_thin_data_stays_near_the_identity_and_too_little_is_none() -> None:
    rng = np.random.default_rng(3)
    pred = rng.uniform(0, CAP, 300)
    age = rng.uniform(1, 300, 300)
    corr = AgeCorrection.fit(pred, age, pred, CAP, "test-like")  # a perfect model: nothing to correct
    assert np.max(np.abs(corr.apply(pred, age) - pred)) < 2.0
    assert AgeCorrection.fit(pred[:50], age[:50], pred[:50], CAP, "test-like").is_identity


def test_json_round_trip_and_identity() -> None:
    pred, age, truth = _aged_data()
    corr = AgeCorrection.fit(pred, age, truth, CAP, "every-cycle")
    back = AgeCorrection.from_dict(json.loads(json.dumps(corr.to_dict())))
    np.testing.assert_allclose(back.apply(pred, age), corr.apply(pred, age))
    assert back.prior == "every-cycle" and back.n == len(pred)
    ident = AgeCorrection.from_dict({})  # bundles written before the correction
    assert ident.is_identity and ident.to_dict() == {}
    np.testing.assert_array_equal(ident.apply(pred, age), pred)


@pytest.mark.parametrize("broken", [
    {"values": [[1.0, 2.0]]},
    {"age_knots": [10.0, 5.0]},
])
def test_from_dict_refuses_a_broken_table(broken: dict[str, object]) -> None:
    pred, age, truth = _aged_data()
    d = {**AgeCorrection.fit(pred, age, truth, CAP, "test-like").to_dict(), **broken}
    with pytest.raises(ValueError, match="correction"):
        AgeCorrection.from_dict(d)


def test_test_like_prior_keeps_the_last_150_cycles_after_31_of_history() -> None:
    cycles = np.arange(1, 201)
    rul = 200.0 - cycles
    keep = prior_mask(np.zeros(200), cycles, rul, "test-like")
    assert keep.sum() == TEST_LIKE_RUL[1] - TEST_LIKE_RUL[0] + 1
    assert cycles[keep].min() == 200 - TEST_LIKE_RUL[1] and cycles[keep].max() == 200 - TEST_LIKE_RUL[0]
    short = np.arange(1, 61)
    keep = prior_mask(np.zeros(60), short, 60.0 - short, "test-like")
    assert short[keep].min() == TEST_LIKE_MIN_HISTORY
    assert prior_mask(np.zeros(60), short, 60.0 - short, "every-cycle").all()
