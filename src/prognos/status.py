"""The one health-status rule: a prediction's status comes from its interval's LOWER bound.

``healthy`` / ``warning`` / ``critical`` are judged on the pessimistic end of the calibrated
interval (cycles), not on the point RUL: with a 90 % interval, an engine whose lower bound is
below the critical threshold fails that soon about one time in twenty, and a planner must act on
that, not on the median. ``/api/v1/predict`` (REST, gRPC, SageMaker, ``prognos predict``), the
fleet's stored engine status, its ``rul_low`` alerts and the shadow canary's status agreement all
call :func:`health_status` with the thresholds of :meth:`StatusThresholds.from_settings`.

A status that is *stored* and watched over time (the fleet's engine status, its alerts) also has
hysteresis, :class:`HeldStatus`: it gets worse at once and better only after the better status has
held for ``status_hold_readings`` readings in a row, and then only as far as the worst of them. A
noisy prediction near a threshold cannot tell an engine that is getting worse that it is healthy.

Core module: imports nothing from prognos but :mod:`prognos.config` (types only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prognos.config import Settings

__all__ = ["HEALTH_STATUSES", "HeldStatus", "StatusThresholds", "health_status", "status_rank"]

#: Every status a prediction can have, from best to worst.
HEALTH_STATUSES = ("healthy", "warning", "critical")


def status_rank(status: str) -> int:
    """0 for ``healthy``, 1 ``warning``, 2 ``critical``: higher is worse."""
    return HEALTH_STATUSES.index(status)


def health_status(lower: float, warning: float, critical: float) -> str:
    """``critical`` if the interval's lower bound ``lower`` < ``critical``, ``warning`` if < ``warning``,
    else ``healthy``. All three in cycles of remaining useful life."""
    if lower < critical:
        return "critical"
    if lower < warning:
        return "warning"
    return "healthy"


@dataclass(frozen=True)
class StatusThresholds:
    """The two thresholds of :func:`health_status` (cycles, ``critical <= warning``)."""

    warning: float
    critical: float

    @classmethod
    def from_settings(cls, settings: Settings) -> StatusThresholds:
        """``warning_rul`` / ``critical_rul`` (``alert_*_rul`` are the same values, see ``Settings``)."""
        return cls(settings.warning_rul, settings.critical_rul)

    def of(self, lower: float) -> str:
        """The status of a prediction whose interval's lower bound is ``lower`` (cycles)."""
        return health_status(lower, self.warning, self.critical)


@dataclass(frozen=True)
class HeldStatus:
    """A stored status with hysteresis. ``better_for`` readings in a row have been better than
    ``status``; ``better_worst`` is the worst of them (``None`` when ``better_for`` is 0)."""

    status: str
    better_for: int = 0
    better_worst: str | None = None

    def next(self, raw: str, hold: int) -> HeldStatus:
        """The stored status after a reading whose own status is ``raw``: worse or equal at once (and
        any easing streak starts over); better only on the ``hold``-th better reading in a row, to the
        worst status of that streak. ``hold`` <= 1: no hysteresis."""
        if status_rank(raw) >= status_rank(self.status):
            return HeldStatus(raw)
        worst = raw if self.better_worst is None else max(raw, self.better_worst, key=status_rank)
        if self.better_for + 1 >= hold:
            return HeldStatus(worst)
        return HeldStatus(self.status, self.better_for + 1, worst)
