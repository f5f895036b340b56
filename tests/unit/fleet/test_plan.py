"""The plan's probability: the split normal through the calibrated interval hits its quantiles."""

from __future__ import annotations

import pytest

from prognos.errors import ValidationError
from prognos.fleet.plan import probability_rul_at_most


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95])
def test_the_interval_bounds_are_its_quantiles(confidence: float) -> None:
    rul, lower, upper = 40.0, 22.0, 71.0  # asymmetric, as conformal intervals are
    tail = (1 - confidence) / 2
    assert probability_rul_at_most(lower, rul, lower, upper, confidence) == pytest.approx(tail, abs=1e-6)
    assert probability_rul_at_most(rul, rul, lower, upper, confidence) == pytest.approx(0.5)
    assert probability_rul_at_most(upper, rul, lower, upper, confidence) == pytest.approx(1 - tail, abs=1e-6)


def test_monotone_and_degenerate() -> None:
    xs = [0, 10, 20, 30, 40, 60, 90]
    ps = [probability_rul_at_most(x, 30, 20, 50, 0.9) for x in xs]
    assert ps == sorted(ps) and 0 <= ps[0] < 0.01 and ps[-1] > 0.99
    assert probability_rul_at_most(5, 10, 10, 20, 0.9) == 0.0  # no lower half: nothing below the median
    with pytest.raises(ValidationError):
        probability_rul_at_most(5, 10, 5, 20, 1.0)
