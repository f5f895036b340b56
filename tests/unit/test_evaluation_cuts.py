"""The held-out last-cycle cut is uniform over each life and seeded: no test set's RUL values shape it."""

import numpy as np

from prognos.data.synthetic import synthetic_fleet
from prognos.evaluation import truncate_engines


def test_uniform_cuts_are_seeded_and_reach_into_healthy_life() -> None:
    fleet = synthetic_fleet(100, seed=5, min_life=150, max_life=300)
    engines, rul = truncate_engines(fleet, seed=1)
    full = {e.engine_id: e for e in fleet.engines()}
    for e, r in zip(engines, rul, strict=True):
        assert len(e) >= 1 and full[e.engine_id].cycles[-1] - e.cycles[-1] == r
    assert rul.max() > 145  # the whole life, not a test set's truth range
    np.testing.assert_array_equal(rul, truncate_engines(fleet, seed=1)[1])
