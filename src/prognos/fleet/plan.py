"""The maintenance plan: which engines must come out of service within the next ``horizon``
cycles, most urgent first, and how sure we are. One function, :func:`build_plan`, shared by
``GET /api/v1/plan``, the dashboard's plan page and ``prognos plan``.

Rule (the fleet's status rule, looked ahead): an engine is *due* when its interval's lower bound
reaches the critical threshold within the horizon, i.e. ``lower - horizon <= critical_rul``
(one cycle of service takes one cycle off the RUL). ``due_in`` = ``max(0, lower - critical_rul)``
cycles until that happens; the plan is ordered by ``due_in``, then by probability (descending),
then by engine id.

Probability: the calibrated interval ``[lower, upper]`` at level ``c`` is read as the ``(1-c)/2``
and ``(1+c)/2`` quantiles of the predictive distribution of the RUL, and the point prediction as
its median. A split normal (one Gaussian half each side of the median, each scaled so the
quantile it owns is hit exactly) interpolates between them; ``probability`` is
``P(RUL <= horizon + critical_rul)``: the chance the engine is at or past the critical threshold
by the end of the horizon if it stays in service. Intervals are clipped at 0 cycles, so near the
end of life the lower tail is narrower than the split normal assumes; the probability is then,
if anything, low.

Data quality: the engine's active (open or acknowledged) data-quality alerts — stuck or missing
sensors, missing cycles, implausible values — or ``ok``; a plan row built on bad data says so.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prognos.errors import ValidationError

__all__ = ["DATA_QUALITY_KINDS", "MAX_HORIZON", "MaintenancePlan", "PlanItem", "PlanSource", "build_plan",
           "probability_rul_at_most"]

#: Alert kinds that say the data behind a prediction is suspect.
DATA_QUALITY_KINDS = ("stuck_sensor", "missing_cycles", "out_of_range", "missing_sensor")
MAX_HORIZON = 10_000  # cycles; anything longer is a typo, not a plan
_PAGE = 1000


class PlanSource(Protocol):
    """What the plan reads from the fleet store (pages of dicts, as the REST listings return)."""

    def list_engines(self, *, status: str | None = ..., q: str | None = ..., sort: str = ..., limit: int = ...,
                     offset: int = ...) -> Any: ...

    def list_alerts(self, *, status: str | None = ..., severity: str | None = ..., engine_id: str | None = ...,
                    kind: str | None = ..., target_kind: str | None = ..., limit: int = ...,
                    offset: int = ...) -> Any: ...

    def latest_prediction(self, engine_id: str) -> Any: ...


@dataclass(frozen=True)
class PlanItem:
    """One engine to take out of service. Cycles for RUL fields; ``probability`` in [0, 1]."""

    engine_id: str
    due_in: float  # cycles until the interval's lower bound reaches the critical threshold (0: now)
    probability: float  # P(RUL <= horizon + critical threshold)
    rul: float
    lower: float
    upper: float
    confidence: float  # the interval's nominal coverage
    status: str
    last_cycle: int | None
    last_update: str | None
    model_version: str | None
    data_quality: list[str] = field(default_factory=list)  # active data-quality alert kinds; empty: ok

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MaintenancePlan:
    horizon: int  # cycles
    critical_rul: float  # cycles
    generated_at: str  # ISO-8601 UTC
    engines_considered: int  # engines with a prediction
    engines_unscored: int  # engines without one (not planned: nothing to plan on)
    items: list[PlanItem]

    def to_dict(self) -> dict[str, Any]:
        return {"horizon": self.horizon, "critical_rul": self.critical_rul, "generated_at": self.generated_at,
                "engines_considered": self.engines_considered, "engines_unscored": self.engines_unscored,
                "method": "lower - horizon <= critical_rul; probability = P(RUL <= horizon + critical_rul) "
                          "from a split normal through the calibrated interval",
                "items": [i.to_dict() for i in self.items]}

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["rank", "engine_id", "due_in", "probability", "rul", "lower", "upper", "confidence", "status",
                    "last_cycle", "last_update", "model_version", "data_quality"])
        for rank, i in enumerate(self.items, 1):
            w.writerow([rank, i.engine_id, f"{i.due_in:.1f}", f"{i.probability:.3f}", f"{i.rul:.1f}",
                        f"{i.lower:.1f}", f"{i.upper:.1f}", i.confidence, i.status,
                        "" if i.last_cycle is None else i.last_cycle, i.last_update or "", i.model_version or "",
                        ";".join(i.data_quality) or "ok"])
        return out.getvalue()


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _z(p: float) -> float:
    """Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    if p > 1 - lo:
        return -_z(1 - p)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)


def probability_rul_at_most(x: float, rul: float, lower: float, upper: float, confidence: float) -> float:
    """``P(RUL <= x)`` under the split normal whose median is ``rul`` and whose ``(1-c)/2`` and
    ``(1+c)/2`` quantiles are ``lower`` and ``upper`` (see the module docstring)."""
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence: {confidence} is not in (0, 1)")
    z = _z((1.0 + confidence) / 2.0)
    spread = (rul - lower) if x < rul else (upper - rul)
    if spread <= 0:  # a degenerate half: all its mass sits at the median
        return 1.0 if x >= rul else 0.0
    return _phi((x - rul) / (spread / z))


def build_plan(source: PlanSource, horizon: int, critical_rul: float, *, now: datetime | None = None,
               ) -> MaintenancePlan:
    """The engines due within ``horizon`` cycles, most urgent first (module docstring: the rule)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 0 <= horizon <= MAX_HORIZON:
        raise ValidationError(f"horizon: {horizon!r} is not a whole number of cycles in 0..{MAX_HORIZON}")
    engines: list[dict[str, Any]] = []
    while True:
        page = source.list_engines(sort="lower", limit=_PAGE, offset=len(engines))
        engines += page.items
        if len(page.items) < _PAGE or len(engines) >= page.total:
            break
    scored = [e for e in engines if e.get("lower") is not None and e.get("rul") is not None]
    due = [e for e in scored if float(e["lower"]) - horizon <= critical_rul]
    quality = _data_quality(source) if due else {}
    items = []
    for e in due:
        latest = source.latest_prediction(e["engine_id"])
        confidence = float(getattr(latest, "confidence", 0.9) or 0.9)
        rul, lower, upper = float(e["rul"]), float(e["lower"]), float(e["upper"])
        items.append(PlanItem(
            engine_id=e["engine_id"], due_in=max(0.0, lower - critical_rul),
            probability=probability_rul_at_most(horizon + critical_rul, rul, lower, upper, confidence),
            rul=rul, lower=lower, upper=upper, confidence=confidence, status=str(e.get("status")),
            last_cycle=e.get("last_cycle"), last_update=e.get("last_update"), model_version=e.get("model_version"),
            data_quality=sorted(quality.get(e["engine_id"], ())),
        ))
    items.sort(key=lambda i: (i.due_in, -i.probability, i.engine_id))
    stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    return MaintenancePlan(horizon, critical_rul, stamp, len(scored), len(engines) - len(scored), items)


def _data_quality(source: PlanSource) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    offset = 0
    while True:
        page = source.list_alerts(status="open,acknowledged", kind=",".join(DATA_QUALITY_KINDS),
                                  target_kind="engine", limit=_PAGE, offset=offset)
        for a in page.items:
            if a.get("engine_id"):
                out.setdefault(a["engine_id"], set()).add(a["kind"])
        offset += len(page.items)
        if len(page.items) < _PAGE or offset >= page.total:
            return out
