"""The alert state machine as pure functions: what a verdict or a person does to an active alert."""

from __future__ import annotations

import pytest

from prognos.errors import ConflictError
from prognos.fleet.alerts import ActiveAlert, Transition, acknowledged, transition
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
    assert transition(ActiveAlert("critical", status), WARN) == Transition("downgraded", "warning", status, True)


@pytest.mark.parametrize("status", ["open", "acknowledged"])
def test_a_cleared_condition_auto_resolves(status: str) -> None:
    assert transition(ActiveAlert("critical", status), None) == Transition("resolved", "critical", "resolved", False)


def test_people_acknowledge_open_alerts_but_not_resolved_ones() -> None:
    assert acknowledged("open", 1) == "acknowledged"
    assert acknowledged("acknowledged", 1) == "acknowledged"  # a no-op
    with pytest.raises(ConflictError, match="alert 7 is resolved"):
        acknowledged("resolved", 7)
