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
