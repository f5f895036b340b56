"""The one health-status rule: a prediction's status comes from its interval's LOWER bound.

``healthy`` / ``warning`` / ``critical`` are judged on the pessimistic end of the calibrated
interval (cycles), not on the point RUL: with a 90 % interval, an engine whose lower bound is
below the critical threshold fails that soon about one time in twenty, and a planner must act on
that, not on the median. ``/api/v1/predict`` (REST, gRPC, SageMaker, ``prognos predict``), the
fleet's stored engine status, its ``rul_low`` alerts and the shadow canary's status agreement all
call :func:`health_status` with the thresholds of :meth:`StatusThresholds.from_settings`.

Core module: imports nothing from prognos but :mod:`prognos.config` (types only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prognos.config import Settings

__all__ = ["HEALTH_STATUSES", "StatusThresholds", "health_status"]

#: Every status a prediction can have, from best to worst.
HEALTH_STATUSES = ("healthy", "warning", "critical")


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
