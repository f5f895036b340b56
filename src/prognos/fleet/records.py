"""Plain value objects the fleet store returns and the API serialises (no ORM objects leak out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prognos.data.cmapss import EngineSeries

if TYPE_CHECKING:
    from prognos.fleet.alerts import Debounce, RulPolicy

__all__ = [
    "AlertChange",
    "AlertCondition",
    "AlertRecord",
    "EngineRecord",
    "EngineScore",
    "History",
    "IngestResult",
    "Page",
    "PredictionRecord",
    "ReadingBatch",
    "RetentionResult",
    "StoredBatch",
    "iso",
]


def iso(t: datetime | None) -> str | None:
    """UTC ISO-8601 with a ``Z``, as every API time is written."""
    return None if t is None else t.isoformat().replace("+00:00", "Z")


#: Validated readings of one engine to store: ``cycles`` (n,) int64 strictly increasing, ``values``
#: (n, 24) float64 in MEASUREMENT_FIELDS order (NaN where a channel was not sent). The loader's type.
ReadingBatch = EngineSeries


@dataclass(frozen=True)
class StoredBatch:
    """What storing a :class:`ReadingBatch` did. ``previous_last_cycle`` is the engine's last cycle
    before this batch (None for a new engine). ``version`` is the engine's reading count after it
    (``engines.n_readings``, read under the engine's row lock): the version of its history that
    several writer processes compare (see :mod:`prognos.fleet.windows`)."""

    engine_id: str
    accepted: int
    duplicates: int
    last_cycle: int
    previous_last_cycle: int | None
    version: int | None = None


#: An engine's latest readings, oldest first (the same layout as :data:`ReadingBatch`).
History = EngineSeries


@dataclass(frozen=True)
class AlertCondition:
    """A condition that holds now: the alert of its kind should be active with this severity."""

    severity: str  # warning / critical
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineScore:
    """One engine after an ingest: its new prediction (None when no model could score it) and the
    desired state of each alert kind evaluated (a condition, or None = clear)."""

    engine_id: str
    cycle: int
    prediction: PredictionRecord | None
    conditions: dict[str, AlertCondition | None]
    # The history version (StoredBatch.version) the prediction was computed from: it is stored
    # only if no other writer has committed readings of the engine since (None: no check).
    basis: int | None = None
    # The status hysteresis and rul_low rule (None: the prediction's own status, no hysteresis) and
    # the resolve debounce (None: resolve at once) — AlertRules' settings.
    policy: RulPolicy | None = None
    debounce: Debounce | None = None


@dataclass(frozen=True)
class PredictionRecord:
    engine_id: str
    cycle: int
    rul: float
    lower: float
    upper: float
    confidence: float
    status: str
    model_version: str
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = iso(self.created_at)
        return d


@dataclass(frozen=True)
class EngineRecord:
    id: str
    tags: dict[str, Any]
    model_family: str | None
    created_at: datetime
    last_cycle: int | None
    last_reading_at: datetime | None
    n_readings: int
    rul: float | None
    lower: float | None
    upper: float | None
    status: str
    model_version: str | None
    predicted_cycle: int | None
    predicted_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine_id": self.id,
            "tags": self.tags,
            "model_family": self.model_family,
            "created_at": iso(self.created_at),
            "last_cycle": self.last_cycle,
            "last_update": iso(self.last_reading_at),
            "n_readings": self.n_readings,
            "rul": self.rul,
            "lower": self.lower,
            "upper": self.upper,
            "status": self.status,
            "model_version": self.model_version,
            "predicted_cycle": self.predicted_cycle,
            "predicted_at": iso(self.predicted_at),
        }


@dataclass(frozen=True)
class AlertRecord:
    """An alert on an engine (``target_kind`` "engine", ``engine_id`` set) or on a model version
    (``target_kind`` "model", ``engine_id`` None, ``model_version`` set)."""

    id: int
    engine_id: str | None
    kind: str
    severity: str
    status: str
    message: str
    details: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    target_kind: str = "engine"
    model_version: str | None = None
    peak_severity: str | None = None  # the worst severity it ever had (None: as ``severity``)
    transitions: list[dict[str, Any]] = field(default_factory=list)  # event, severity, at, cycle, reason

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("opened_at", "updated_at", "acknowledged_at", "resolved_at"):
            d[k] = iso(d[k])
        d["peak_severity"] = self.peak_severity or self.severity
        return d


@dataclass(frozen=True)
class AlertChange:
    """An alert that was opened, escalated or resolved by the rules (what webhooks announce)."""

    event: str  # opened / escalated / eased / resolved
    alert: AlertRecord

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "alert": self.alert.to_dict()}


@dataclass(frozen=True)
class Page:
    """One page of a listing: ``items`` (dicts ready for JSON) and the ``total`` matching."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IngestResult:
    """The answer to one ingest (REST body, gRPC reply, CLI line). ``predictions`` holds the new
    prediction of each engine the model could score."""

    accepted: int
    duplicates: int
    engines: list[StoredBatch]
    predictions: list[PredictionRecord]
    prediction_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "engines": [asdict(e) for e in self.engines],
            "predictions": [p.to_dict() for p in self.predictions],
            "prediction_error": self.prediction_error,
        }


@dataclass(frozen=True)
class RetentionResult:
    """Rows deleted by one retention run (older than ``cutoff``, beyond each engine's latest window)."""

    cutoff: datetime
    readings_deleted: int
    predictions_deleted: int

    def to_dict(self) -> dict[str, Any]:
        return {"cutoff": iso(self.cutoff), "readings_deleted": self.readings_deleted,
                "predictions_deleted": self.predictions_deleted}
