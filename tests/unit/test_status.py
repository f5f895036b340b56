"""The one status rule (prognos.status) and its thresholds from the settings."""

from __future__ import annotations

import itertools

import pytest

import prognos.status
from prognos.config import get_settings
from prognos.errors import ConfigError
from prognos.status import HeldStatus, StatusThresholds, health_status, status_rank


def test_public_names() -> None:
    assert set(prognos.status.__all__) == {"HEALTH_STATUSES", "HeldStatus", "StatusThresholds", "health_status",
                                           "status_rank"}


def test_bands_by_the_lower_bound() -> None:
    assert [health_status(v, 40, 15) for v in (50, 40, 39.9, 15, 14.9, 0)] == [
        "healthy", "healthy", "warning", "warning", "critical", "critical"]


def test_one_pair_of_thresholds_under_either_name() -> None:
    assert StatusThresholds.from_settings(get_settings(alert_warning_rul=50, alert_critical_rul=25)) == \
        StatusThresholds(50, 25)
    s = get_settings(warning_rul=60, critical_rul=20)
    assert (s.alert_warning_rul, s.alert_critical_rul) == (60, 20)
    with pytest.raises(ConfigError, match="differ"):
        get_settings(warning_rul=50, alert_warning_rul=45)
    with pytest.raises(ConfigError, match="must not exceed"):
        get_settings(critical_rul=45)


def _held_sequence(raw: list[str], hold: int) -> list[str]:
    state, out = HeldStatus(raw[0]), [raw[0]]
    for r in raw[1:]:
        state = state.next(r, hold)
        out.append(state.status)
    return out


def test_held_status_gets_worse_at_once_and_better_only_after_holding() -> None:
    raw = ["healthy", "warning", "healthy", "warning", "healthy", "healthy", "healthy", "critical", "warning",
           "healthy", "warning", "warning", "healthy"]
    assert _held_sequence(raw, 3) == ["healthy", "warning", "warning", "warning", "warning", "warning", "healthy",
                                      "critical", "critical", "critical", "warning", "warning", "warning"]
    # It eases only as far as the worst status of the streak that earned it.
    assert _held_sequence(["critical", "healthy", "warning", "healthy"], 3)[-1] == "warning"
    assert _held_sequence(raw, 1) == raw  # hold 1: no hysteresis


@pytest.mark.parametrize("seed", range(20))
def test_a_noisy_falling_prediction_never_eases_the_held_status(seed: int) -> None:
    """A falling lower bound with noise that makes the per-reading status flip: the held status
    with a hold longer than the noise's excursions never goes back to a better one."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lower = np.linspace(80, 0, 200) + rng.normal(0, 1, 200)
    th = StatusThresholds(40, 15)
    raw = [th.of(v) for v in lower]
    held = [status_rank(s) for s in _held_sequence(raw, 10)]
    assert all(b >= a for a, b in itertools.pairwise(held))
