"""Every-cycle evaluation: the fleet's view of a model (each cycle from the latest readings)."""

from __future__ import annotations

import numpy as np

from prognos.data.synthetic import synthetic_fleet
from prognos.evaluation import Trajectories, every_cycle_metrics
from prognos.features.pipeline import FeaturePipeline
from prognos.status import StatusThresholds


def test_recent_windows_are_last_window_of_the_latest_readings_at_every_cycle() -> None:
    fleet = synthetic_fleet(6, seed=2, min_life=150, max_life=220)
    pipe = FeaturePipeline(window=20, rul_cap=125, smoothing=0.2).fit(fleet)
    for e in fleet.engines():
        for readings in (30, 60):
            got = pipe.recent_windows(e.values, readings)
            want = np.stack([pipe.last_window(e.values[max(0, t - readings + 1): t + 1]) for t in range(len(e))])
            np.testing.assert_allclose(got, want, atol=1e-5)


def _traj(pred: list[float], lower: list[float], true: list[float], ids: list[str] | None = None) -> Trajectories:
    n = len(pred)
    return Trajectories(np.array(ids or ["e"] * n), np.arange(1, n + 1), np.array(true, float), np.array(pred, float),
                        np.array(lower, float), np.array(pred, float) + 20)


def test_reversals_on_a_falling_prediction_and_the_fleets_hysteresis_are_counted() -> None:
    # Lower bounds 45 (healthy), 35 (warning), 41 (healthy again, on a FALLING prediction), 30, 10.
    t = _traj(pred=[70, 60, 59, 50, 30], lower=[45, 35, 41, 30, 10], true=[70, 60, 50, 40, 30])
    m = every_cycle_metrics(t, 125.0, StatusThresholds(40, 15), hold=3)
    raw, fleet = m["status"]["predictor"], m["status"]["fleet"]
    assert (raw["changes"], raw["reversals_to_better"], raw["reversals_on_falling_prediction"]) == (4, 1, 1)
    assert (fleet["changes"], fleet["reversals_to_better"]) == (2, 0)  # the hold keeps "warning"
    assert m["status"]["truth_changes"] == 1  # truth: healthy down to 40, warning at 30
    assert m["first_alarm"]["warning"] == {"engines": 1, "median_true_rul": 60.0, "min_true_rul": 60.0}
    assert m["first_alarm"]["critical"]["min_true_rul"] == 30.0


def test_late_life_misses_and_dangerous_misses() -> None:
    true = [49, 48, 47, 46, 45, 100]
    pred = [49, 80, 47, 46, 45, 100]  # late by 32 at true 48: dangerous
    lower = [40, 50, 40, 40, 30, 90]  # truth 48 below the lower bound 50
    m = every_cycle_metrics(_traj(pred, lower, true), 125.0, StatusThresholds(40, 15), hold=1)
    late = m["late_life"]
    assert late["n"] == 5 and late["dangerous_misses"] == 0.2 and late["below_lower_bound"] == 0.2
    assert late["engines_with_dangerous_misses"] == 1
    assert [r["true_rul"] for r in m["by_true_rul"]] == ["25-49", ">= 100"]


def test_engines_are_kept_apart_and_the_worst_is_named() -> None:
    t = _traj(pred=[50, 50, 10, 10], lower=[30, 30, 0, 0], true=[50, 49, 100, 99], ids=["a", "a", "b", "b"])
    m = every_cycle_metrics(t, 125.0, StatusThresholds(40, 15), hold=1)
    assert m["n_engines"] == 2 and m["status"]["predictor"]["changes"] == 0  # no change across the boundary
    assert m["worst_engines_by_coverage"][0] == {"engine_id": "b", "coverage": 0.0, "n": 2}
