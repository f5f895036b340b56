"""The alert state machine as pure functions: what a verdict or a person does to an active alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prognos.errors import ConflictError
from prognos.fleet.alerts import ActiveAlert, Debounce, Transition, acknowledged, transition
from prognos.fleet.records import AlertCondition

WARN = AlertCondition("warning", "w")
CRIT = AlertCondition("critical", "c")


def test_nothing_active_and_nothing_holds_changes_nothing() -> None:
    assert transition(None, None) is None


def test_a_condition_opens_an_alert() -> None:
    assert transition(None, WARN) == Transition("opened", "warning", "open", True)


def test_the_same_severity_holding_still_changes_nothing() -> None:
    assert transition(ActiveAlert("warning", "open"), WARN) is None
    assert transition(ActiveAlert("warning", "acknowledged"), WARN) is None  # stays acknowledged


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_escalation_reopens_and_downgrade_keeps_the_status(status: str) -> None:
    assert transition(ActiveAlert("warning", status), CRIT) == Transition("escalated", "critical", "open", True)
    assert transition(ActiveAlert("critical", status), WARN) == Transition("eased", "warning", status, True)


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_a_cleared_condition_auto_resolves(status: str) -> None:
    assert transition(ActiveAlert("critical", status), None) == Transition("resolved", "critical", "resolved", False,
                                                                            1)


def test_people_acknowledge_open_alerts_but_not_resolved_ones() -> None:
    assert acknowledged("open", 1) == "acknowledged"
    assert acknowledged("acknowledged", 1) == "acknowledged"  # a no-op
    with pytest.raises(ConflictError, match="alert 7 is resolved"):
        acknowledged("resolved", 7)


def test_resolving_waits_for_readings_in_a_row_and_time_open() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    d = Debounce(readings=3, min_open_s=30)
    a = ActiveAlert("warning", "open", 0, t0)
    first = transition(a, None, d, t0 + timedelta(seconds=60))
    assert first == Transition("clearing", "warning", "open", False, 1)  # quiet: counts, announces nothing
    second = transition(ActiveAlert("warning", "open", 1, t0), None, d, t0 + timedelta(seconds=61))
    assert second is not None and second.event == "clearing" and second.clear_for == 2
    third = transition(ActiveAlert("warning", "open", 2, t0), None, d, t0 + timedelta(seconds=62))
    assert third is not None and third.event == "resolved"
    young = transition(ActiveAlert("warning", "open", 2, t0), None, d, t0 + timedelta(seconds=10))
    assert young is not None and young.event == "clearing"  # 3 clear verdicts, but open only 10 s
    # The condition holding again ends the streak.
    again = transition(ActiveAlert("warning", "open", 2, t0), WARN, d, t0 + timedelta(seconds=63))
    assert again == Transition("holding", "warning", "open", True, 0)
