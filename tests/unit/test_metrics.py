import math

import numpy as np
import pytest

from prognos.metrics import phm08_score, rul_metrics


def test_phm08_asymmetry():
    # d = -13 (early) costs e-1; d = +10 (late) costs e-1; perfect costs 0
    assert phm08_score(np.array([87.0]), np.array([100.0])) == pytest.approx(math.e - 1)
    assert phm08_score(np.array([110.0]), np.array([100.0])) == pytest.approx(math.e - 1)
    assert phm08_score(np.array([5.0]), np.array([5.0])) == 0
    assert phm08_score(np.array([120.0]), np.array([100.0])) > phm08_score(np.array([80.0]), np.array([100.0]))


def test_rul_metrics():
    m = rul_metrics(np.array([10.0, 20.0]), np.array([13.0, 16.0]), np.array([9.0, 17.0]), np.array([14.0, 21.0]))
    assert m.rmse == pytest.approx(math.sqrt((9 + 16) / 2))
    assert m.mae == pytest.approx(3.5)
    assert m.coverage == 0.5 and m.mean_interval_width == pytest.approx(4.5) and m.n_engines == 2
