"""The one status rule (prognos.status) and its thresholds from the settings."""

from __future__ import annotations

import pytest

import prognos.status
from prognos.config import get_settings
from prognos.errors import ConfigError
from prognos.status import StatusThresholds, health_status


def test_public_names() -> None:
    assert set(prognos.status.__all__) == {"HEALTH_STATUSES", "StatusThresholds", "health_status"}


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
