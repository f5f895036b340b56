import numpy as np

from prognos.data.synthetic import synthetic_fleet
from prognos.evaluation import MIN_HISTORY, cut_like_test_set, truncate_engines


def test_test_like_cuts_follow_the_reference_rul_and_keep_history():
    fleet = synthetic_fleet(200, seed=3, min_life=150, max_life=300)
    ref = np.array([10.0, 50.0, 100.0])
    engines, rul = cut_like_test_set(fleet, ref, seed=0)
    assert set(rul.tolist()) == {10.0, 50.0, 100.0}  # only reference values
    full = {e.engine_id: e for e in fleet.engines()}
    for e, r in zip(engines, rul, strict=True):
        assert len(e) >= MIN_HISTORY
        assert full[e.engine_id].cycles[-1] - e.cycles[-1] == r
    counts = np.array([np.sum(rul == v) for v in ref])
    assert counts.min() > 40  # drawn evenly from the reference values
    _again, rul2 = cut_like_test_set(fleet, ref, seed=0)
    np.testing.assert_array_equal(rul, rul2)  # seeded


def test_test_like_cuts_differ_from_uniform_cuts():
    fleet = synthetic_fleet(100, seed=5, min_life=150, max_life=300)
    _, like = cut_like_test_set(fleet, np.arange(7.0, 146.0), seed=1)
    _, uniform = truncate_engines(fleet, seed=1)
    assert like.max() <= 145 and uniform.max() > 145  # uniform cuts reach far into healthy life


def test_short_engine_gets_a_cut_even_without_a_fitting_reference_value():
    fleet = synthetic_fleet(5, seed=2, min_life=20, max_life=25)
    engines, rul = cut_like_test_set(fleet, np.array([140.0]), seed=0)
    assert all(len(e) >= 1 for e in engines) and np.all(rul >= 0)
