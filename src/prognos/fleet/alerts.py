"""Alert rules: what should be alarming about an engine right now.

Two halves, both pure (no database, no clock):

* the **rules** (:class:`AlertRules`): given an engine's newest prediction and its recent readings
  they return, per alert kind, the condition that holds (severity + message) or None when it
  has cleared;
* the **transitions** (:func:`transition`, :func:`acknowledged`): what a verdict
  or a person does to the active alert — open -> acknowledged -> resolved, at most one active
  alert per target and kind, escalation re-opens an acknowledged alert, auto-resolve when the
  condition has stayed clear (:class:`Debounce`: ``alert_resolve_readings`` verdicts in a row, and
  the alert open for at least ``alert_min_open_s``). :mod:`prognos.fleet.alert_store` applies them
  to rows and keeps each alert's memory: its peak severity (easing never lowers it) and every
  transition with its time, cycle and reason.

An alert opens at once: the status it follows gets worse at once (prognos.status), and a warning
is never held back. It eases (``eased``) only as the engine's stored status does, which has
hysteresis (``status_hold_readings``).

An alert's target is an engine (``target_kind`` ``engine``, the kinds below) or a model version
(``model``: e.g. ``drift``, raised by the lifecycle's monitoring through
:class:`prognos.lifecycle.ports.FleetPort`).

Kinds:

* ``rul_low`` — the engine's stored status (the prediction interval's LOWER bound, in cycles, below
  ``critical_rul``: critical, below ``warning_rul``: warning; with hysteresis): alarm on the
  pessimistic end, so a calibrated 90 % interval means a failure is rarely missed.
* ``stuck_sensor`` — a model input sensor repeated one value in ``alert_stuck_readings``
  consecutive readings (a frozen transmitter; real sensors jitter).
* ``missing_cycles`` — gaps in the cycle numbers of the recent readings.
* ``out_of_range`` / ``missing_sensor`` — the engine's last batch was refused for implausible values
  / for lacking a sensor the model needs; cleared by the next accepted batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from prognos.config import Settings
from prognos.data.schema import MEASUREMENT_FIELDS, SENSOR_FIELDS
from prognos.data.validation import ReadingSpec
from prognos.errors import ConflictError
from prognos.fleet.records import AlertCondition, History, PredictionRecord
from prognos.fleet.tables import ACTIVE_ALERT
from prognos.status import StatusThresholds

__all__ = ["ACTIVE_ALERT", "ALERT_KINDS", "QUIET_EVENTS", "SEVERITY_RANK", "ActiveAlert", "AlertRules", "Debounce",
           "RulPolicy", "Transition", "acknowledged", "transition"]

ALERT_KINDS = ("rul_low", "stuck_sensor", "missing_cycles", "out_of_range", "missing_sensor")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


#: Transitions that only count towards the debounce: stored, but neither announced nor remembered.
QUIET_EVENTS = ("clearing", "holding")


@dataclass(frozen=True)
class ActiveAlert:
    """The state of an active (open or acknowledged) alert that a transition depends on."""

    severity: str
    status: str  # open / acknowledged
    clear_for: int = 0  # verdicts in a row that found the condition clear
    opened_at: datetime | None = None


@dataclass(frozen=True)
class Debounce:
    """An active alert resolves only after its condition was clear on ``readings`` verdicts in a row
    and it has been open for at least ``min_open_s`` seconds."""

    readings: int = 1
    min_open_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Debounce:
        return cls(settings.alert_resolve_readings, settings.alert_min_open_s)


@dataclass(frozen=True)
class Transition:
    """What to do to the alert of one target and kind. ``event`` is what webhooks announce:
    opened / escalated / eased / resolved (the quiet ones, :data:`QUIET_EVENTS`, only count a
    debounce). ``severity`` and ``status`` are the alert's after the transition; ``refresh`` says
    whether its message and details take the condition's; ``clear_for`` is its new clear streak."""

    event: str
    severity: str
    status: str
    refresh: bool
    clear_for: int = 0


def transition(active: ActiveAlert | None, condition: AlertCondition | None, debounce: Debounce = Debounce(),
               now: datetime | None = None) -> Transition | None:
    """The verdict ``condition`` (None: cleared) against the ``active`` alert (None: none) at ``now``.
    None when nothing changes (no alert and nothing holds, or the same severity holds still)."""
    if condition is None:
        if active is None:
            return None
        clear_for = active.clear_for + 1
        open_s = (now - active.opened_at).total_seconds() if now and active.opened_at else math.inf
        if clear_for >= debounce.readings and open_s >= debounce.min_open_s:
            return Transition("resolved", active.severity, "resolved", False, clear_for)
        return Transition("clearing", active.severity, active.status, False, clear_for)
    if active is None:
        return Transition("opened", condition.severity, "open", True)
    if condition.severity == active.severity:
        # Holding again: a clear streak in progress starts over (and the message follows the condition).
        return None if active.clear_for == 0 else Transition("holding", active.severity, active.status, True)
    worse = SEVERITY_RANK.get(condition.severity, 0) > SEVERITY_RANK.get(active.severity, 0)
    # An acknowledged warning that turns critical needs eyes again: escalation re-opens it.
    return Transition("escalated" if worse else "eased", condition.severity,
                      "open" if worse else active.status, True)


def acknowledged(status: str, alert_id: int) -> str:
    """A person acknowledges: open -> acknowledged; acknowledged stays; resolved is a ConflictError."""
    if status == "resolved":
        raise ConflictError(f"alert {alert_id} is resolved; it cannot be acknowledged")
    return "acknowledged"


def _outward(lower: float, upper: float) -> tuple[str, str]:
    """An interval for a message, rounded outwards to 0.1 cycle: a lower bound of 39.96 reads 39.9,
    never "40" beside "below 40"."""
    return f"{math.floor(lower * 10) / 10:.1f}", f"{math.ceil(upper * 10) / 10:.1f}"


@dataclass(frozen=True)
class RulPolicy:
    """The ``rul_low`` rule: thresholds of the one status rule and the readings a better status
    must hold before the stored status eases (``status_hold_readings``)."""

    thresholds: StatusThresholds
    hold: int = 1

    def condition(self, p: PredictionRecord, status: str) -> AlertCondition | None:
        """The ``rul_low`` condition while the engine's stored status is ``status``. Its message is
        built from the unrounded bounds and says why the status is what it is."""
        if status == "healthy":
            return None
        limit = self.thresholds.critical if status == "critical" else self.thresholds.warning
        lo, hi = _outward(p.lower, p.upper)
        why = (f"lower bound below {limit:g}" if p.lower < limit else
               f"lower bound back above {limit:g} (now {p.status}); stays {status} until a better status has held "
               f"for {self.hold} readings")
        return AlertCondition(
            status,
            f"engine {p.engine_id}: RUL {p.rul:.1f} cycles (interval {lo}-{hi}) at cycle {p.cycle}; {why}",
            {"rul": p.rul, "lower": p.lower, "upper": p.upper, "cycle": p.cycle, "model_version": p.model_version,
             "prediction_status": p.status},
        )


class AlertRules:
    def __init__(self, settings: Settings) -> None:
        self.thresholds = StatusThresholds.from_settings(settings)
        self.warning_rul = self.thresholds.warning
        self.critical_rul = self.thresholds.critical
        self.stuck_n = settings.alert_stuck_readings
        self.policy = RulPolicy(self.thresholds, settings.status_hold_readings)
        self.debounce = Debounce.from_settings(settings)

    def status(self, lower: float) -> str:
        """The status of one prediction whose interval's lower bound is ``lower`` (cycles): the one
        rule of :mod:`prognos.status`, the same ``/api/v1/predict`` answers with. The engine's stored
        status adds hysteresis to it (:meth:`prognos.fleet.predictions.PredictionStore.save_scores`)."""
        return self.thresholds.of(lower)

    def rul(self, p: PredictionRecord) -> AlertCondition | None:
        """The ``rul_low`` condition of ``p`` alone (no hysteresis; the store applies it)."""
        return self.policy.condition(p, self.status(p.lower))

    def stuck(self, h: History, spec: ReadingSpec) -> AlertCondition | None:
        if len(h) < self.stuck_n:
            return None
        recent = h.values[-self.stuck_n:]
        stuck = []
        for name in spec.required:
            if name not in SENSOR_FIELDS:
                continue  # operational settings legitimately hold still
            lo_hi: Sequence[float] | None = spec.ranges.get(name)
            if lo_hi is not None and lo_hi[0] == lo_hi[1]:
                continue  # a sensor that never varied in training cannot be told stuck
            col = recent[:, MEASUREMENT_FIELDS.index(name)]
            if not np.isnan(col).any() and np.all(col == col[0]):
                stuck.append(name)
        if not stuck:
            return None
        return AlertCondition(
            "warning",
            f"engine {h.engine_id}: sensor(s) {', '.join(stuck)} repeated one value for the last {self.stuck_n} "
            f"readings (cycles {int(h.cycles[-self.stuck_n])}-{int(h.cycles[-1])})",
            {"sensors": stuck},
        )

    @staticmethod
    def gaps(h: History) -> AlertCondition | None:
        if len(h) < 2:
            return None
        jumps = np.flatnonzero(np.diff(h.cycles) > 1)
        if not len(jumps):
            return None
        missing = [(int(h.cycles[i]) + 1, int(h.cycles[i + 1]) - 1) for i in jumps]
        n = sum(b - a + 1 for a, b in missing)
        shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in missing[:5])
        return AlertCondition("warning", f"engine {h.engine_id}: {n} cycle(s) missing in recent readings: {shown}",
                              {"missing": [list(m) for m in missing[:50]]})

    def evaluate(self, h: History, spec: ReadingSpec, prediction: PredictionRecord | None) -> dict[
            str, AlertCondition | None]:
        """Verdicts after an accepted batch. ``rul_low`` is judged only when there is a new
        prediction (no model -> leave it as it is); an accepted batch clears the rejection kinds."""
        verdicts: dict[str, AlertCondition | None] = {
            "stuck_sensor": self.stuck(h, spec),
            "missing_cycles": self.gaps(h),
            "out_of_range": None,
            "missing_sensor": None,
        }
        if prediction is not None:
            verdicts["rul_low"] = self.rul(prediction)
        return verdicts

    @staticmethod
    def rejected(engine_id: str, kind: str, reason: str) -> Mapping[str, AlertCondition | None]:
        """``kind`` (out_of_range / missing_sensor) holds: the engine's last batch was refused."""
        return {kind: AlertCondition("warning", f"engine {engine_id}: readings rejected: {reason}",
                                     {"reason": reason})}
