"""What the model lifecycle needs from the fleet app, as small Protocols the fleet implements.

Lifecycle sits below the fleet (``serving`` -> ``lifecycle`` -> ``fleet``): it never imports
the fleet package. Ground truth and shadow pairs are stored, and model-level alerts raised,
through these seams; the fleet's ``ground_truth`` module implements :class:`GroundTruth` over the
fleet database and its ``Fleet`` object implements :class:`FleetPort`. The fakes
below keep everything in memory, for tests that need no database.

RUL and cycles in cycles; times timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prognos.errors import ConflictError, NotFoundError

__all__ = [
    "FailureRecord",
    "FakeFleet",
    "FakeGroundTruth",
    "FleetPort",
    "GroundTruth",
    "ModelAlert",
    "RealisedPrediction",
    "ShadowOutcome",
    "ShadowPair",
    "StoredFailure",
]


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FailureRecord:
    """Ground truth: ``engine_id`` failed after ``cycle`` (its last cycle)."""

    engine_id: str
    cycle: int
    recorded_at: datetime
    recorded_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"engine_id": self.engine_id, "cycle": self.cycle, "recorded_at": _iso(self.recorded_at),
                "recorded_by": self.recorded_by}


@dataclass(frozen=True)
class StoredFailure:
    """What storing a failure did: ``created`` is False when the same failure was stored already."""

    failure: FailureRecord
    created: bool


@dataclass(frozen=True)
class RealisedPrediction:
    """A stored prediction of a failed engine, made at or before its failure, with its true RUL."""

    engine_id: str
    model_version: str
    predicted: float
    true: float


@dataclass(frozen=True)
class ShadowPair:
    """One request answered by production and scored in shadow by the candidate (RUL in cycles)."""

    engine_id: str
    cycle: int | None
    production_version: str
    production_rul: float
    candidate_version: str
    candidate_rul: float


@dataclass(frozen=True)
class ShadowOutcome:
    """A stored shadow pair of a failed engine with its true RUL (cycles)."""

    production_version: str
    candidate_version: str
    production_rul: float
    candidate_rul: float
    true: float


@dataclass(frozen=True)
class ModelAlert:
    """A condition of a model version (not of an engine), e.g. input drift. ``severity``:
    warning / critical."""

    model_version: str
    kind: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class GroundTruth(Protocol):
    """Recorded failures, the stored predictions they judge, and shadow-canary pairs. Blocking
    (call from a worker thread in async code)."""

    def engine_last_cycle(self, engine_id: str) -> int | None:
        """The engine's last stored cycle (None: no readings). NotFoundError for an unknown engine."""
        ...

    def store_failure(self, engine_id: str, cycle: int, by: str) -> StoredFailure:
        """Store the failure once; the same cycle again is a no-op, another one a ConflictError."""
        ...

    def count_failures(self) -> int: ...

    def realised_predictions(self, engine_ids: Sequence[str] | None = None) -> list[RealisedPrediction]:
        """Every stored prediction of a failed engine (of ``engine_ids``, default all) made at or
        before its failure, with its true RUL."""
        ...

    def save_shadow_pairs(self, pairs: Sequence[ShadowPair]) -> int:
        """Store the pairs (one transaction); returns how many were stored."""
        ...

    def prune_shadow_pairs(self, max_rows: int) -> int:
        """Keep the newest ``max_rows`` pairs; returns rows deleted."""
        ...

    def shadow_pair_counts(self) -> dict[tuple[str, str], int]:
        """Stored pairs per (production, candidate) version pair."""
        ...

    def shadow_outcomes(self) -> list[ShadowOutcome]:
        """Stored pairs of failed engines (with a cycle at or before the failure), with true RUL."""
        ...


class FleetPort(Protocol):
    """The fleet as the lifecycle's monitoring sees it: ground truth and model-level alerts."""

    @property
    def ground_truth(self) -> GroundTruth: ...

    async def raise_model_alert(self, alert: ModelAlert) -> None:
        """Open (or escalate / downgrade) the alert of ``alert.kind`` on ``alert.model_version``
        and notify."""
        ...

    async def resolve_model_alert(self, model_version: str, kind: str) -> None:
        """Auto-resolve the active alert of ``kind`` on ``model_version``, if any, and notify."""
        ...

    def runs_scheduled_jobs(self) -> bool:
        """True in exactly one server process per fleet database (it judges drift); may block."""
        ...


# ---------------------------------------------------------------------------------------- fakes


@dataclass
class FakeGroundTruth:
    """In-memory :class:`GroundTruth`: ``engines`` maps engine id -> last cycle; ``predictions``
    holds (engine_id, cycle, model_version, rul)."""

    engines: dict[str, int | None] = field(default_factory=dict)
    predictions: list[tuple[str, int, str, float]] = field(default_factory=list)
    failures: dict[str, FailureRecord] = field(default_factory=dict)
    pairs: list[ShadowPair] = field(default_factory=list)

    def engine_last_cycle(self, engine_id: str) -> int | None:
        if engine_id not in self.engines:
            raise NotFoundError(f"engine {engine_id!r} not found")
        return self.engines[engine_id]

    def store_failure(self, engine_id: str, cycle: int, by: str) -> StoredFailure:
        old = self.failures.get(engine_id)
        if old is None:
            self.failures[engine_id] = FailureRecord(engine_id, cycle, datetime.now(UTC), by)
            return StoredFailure(self.failures[engine_id], True)
        if old.cycle != cycle:
            raise ConflictError(f"engine {engine_id!r}: a failure at cycle {old.cycle} is already recorded "
                                f"(by {old.recorded_by}); it cannot change to {cycle}")
        return StoredFailure(old, False)

    def count_failures(self) -> int:
        return len(self.failures)

    def realised_predictions(self, engine_ids: Sequence[str] | None = None) -> list[RealisedPrediction]:
        return [RealisedPrediction(e, v, r, float(self.failures[e].cycle - c)) for e, c, v, r in self.predictions
                if e in self.failures and c <= self.failures[e].cycle and (engine_ids is None or e in engine_ids)]

    def save_shadow_pairs(self, pairs: Sequence[ShadowPair]) -> int:
        self.pairs.extend(pairs)
        return len(pairs)

    def prune_shadow_pairs(self, max_rows: int) -> int:
        n = max(0, len(self.pairs) - max_rows)
        del self.pairs[:n]
        return n

    def shadow_pair_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for p in self.pairs:
            key = (p.production_version, p.candidate_version)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def shadow_outcomes(self) -> list[ShadowOutcome]:
        return [ShadowOutcome(p.production_version, p.candidate_version, p.production_rul, p.candidate_rul,
                              float(self.failures[p.engine_id].cycle - p.cycle)) for p in self.pairs
                if p.engine_id in self.failures and p.cycle is not None and p.cycle <= self.failures[p.engine_id].cycle]


@dataclass
class FakeFleet:
    """In-memory :class:`FleetPort`: ``active`` holds the open model alerts by (version, kind);
    ``events`` every raise/resolve in order."""

    ground_truth: FakeGroundTruth = field(default_factory=FakeGroundTruth)
    active: dict[tuple[str, str], ModelAlert] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (event, model_version, kind)
    leader: bool = True  # what runs_scheduled_jobs answers

    async def raise_model_alert(self, alert: ModelAlert) -> None:
        key = (alert.model_version, alert.kind)
        old = self.active.get(key)
        if old is None or old.severity != alert.severity:
            self.events.append(("opened" if old is None else "changed", *key))
        self.active[key] = alert

    def runs_scheduled_jobs(self) -> bool:
        return self.leader

    async def resolve_model_alert(self, model_version: str, kind: str) -> None:
        if self.active.pop((model_version, kind), None) is not None:
            self.events.append(("resolved", model_version, kind))
