from __future__ import annotations

import numpy as np

from prognos.config import get_settings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ReadingSpec
from prognos.fleet.alerts import AlertRules
from prognos.fleet.records import History, PredictionRecord
from prognos.status import health_status as lower_bound_status

SETTINGS = get_settings(alert_warning_rul=40, alert_critical_rul=15, alert_stuck_readings=5)
SPEC = ReadingSpec(("setting_1", "s2", "s3", "s6"), {"s2": [600, 700], "s3": [1500, 1700], "s6": [21.61, 21.61]})


def prediction(rul: float, lower: float) -> PredictionRecord:
    return PredictionRecord("e1", 100, rul, lower, rul + 20, 0.9, "x", "m1")


def history(n: int, cycles: list[int] | None = None, seed: int = 0) -> History:
    values = np.random.default_rng(seed).normal(650, 5, (n, len(MEASUREMENT_FIELDS)))
    return History("e1", np.array(cycles or list(range(1, n + 1))), values)


def test_status_and_rul_alerts_follow_the_lower_bound() -> None:
    assert [lower_bound_status(v, 40, 15) for v in (50, 40, 39.9, 15, 14.9, 0)] == [
        "healthy", "healthy", "warning", "warning", "critical", "critical"]
    rules = AlertRules(SETTINGS)
    assert rules.rul(prediction(80, 45)) is None
    warn = rules.rul(prediction(60, 30))  # point estimate healthy, interval not
    assert warn is not None and warn.severity == "warning" and "below 40" in warn.message
    crit = rules.rul(prediction(20, 10))
    assert crit is not None and crit.severity == "critical" and crit.details["lower"] == 10


def test_stuck_sensor_needs_n_identical_readings_of_a_varying_input() -> None:
    rules = AlertRules(SETTINGS)
    h = history(8)
    i2, i6, i_set = (MEASUREMENT_FIELDS.index(n) for n in ("s2", "s6", "setting_1"))
    assert rules.stuck(h, SPEC) is None
    h.values[-5:, i2] = 642.5
    h.values[:, i6] = 21.61  # constant in training too: not judged
    h.values[:, i_set] = 0.0  # settings may hold still
    cond = rules.stuck(h, SPEC)
    assert cond is not None and cond.details["sensors"] == ["s2"] and "cycles 4-8" in cond.message
    h.values[-1, i2] = 642.6  # moved in the last reading: clear
    assert rules.stuck(h, SPEC) is None
    assert rules.stuck(history(4), SPEC) is None  # too short to tell


def test_gaps_name_the_missing_cycles() -> None:
    assert AlertRules.gaps(history(5)) is None
    cond = AlertRules.gaps(history(5, [1, 2, 5, 6, 8]))
    assert cond is not None and "3 cycle(s) missing" in cond.message and "3-4, 7" in cond.message


def test_evaluate_leaves_rul_alone_without_a_prediction() -> None:
    rules = AlertRules(SETTINGS)
    verdicts = rules.evaluate(history(6), SPEC, None)
    assert "rul_low" not in verdicts and verdicts["out_of_range"] is None
    assert rules.evaluate(history(6), SPEC, prediction(5, 1))["rul_low"] is not None


def test_thresholds_are_checked_at_start_up() -> None:
    import pytest

    from prognos.errors import ConfigError

    with pytest.raises(ConfigError, match="alert_critical_rul"):
        get_settings(alert_warning_rul=10, alert_critical_rul=20)


def test_messages_come_from_unrounded_values_and_never_contradict_themselves() -> None:
    """A lower bound of 39.96 used to read "interval 40-91 ... lower bound below 40"."""
    rules = AlertRules(SETTINGS)
    p = PredictionRecord("e1", 100, 62.4, 39.96, 90.02, 0.9, "warning", "m1")
    warn = rules.rul(p)
    assert warn is not None and "interval 39.9-90.1" in warn.message and "lower bound below 40" in warn.message
    # Held at "warning" by the hysteresis while this reading alone is healthy: it says so.
    held = rules.policy.condition(PredictionRecord("e1", 101, 70.0, 41.5, 95.0, 0.9, "healthy", "m1"), "warning")
    assert held is not None and held.severity == "warning"
    assert "back above 40" in held.message and "below 40" not in held.message
    assert f"held for {SETTINGS.status_hold_readings} readings" in held.message
