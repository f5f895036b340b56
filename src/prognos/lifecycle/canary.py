"""Shadow canary: a share of live traffic is also scored by the registry's ``candidate`` version.

Answers always come from the production model. :meth:`ShadowCanary.observe` (a
:class:`~prognos.serving.service.PredictionService` observer) only draws a random number per
prediction and appends the sampled few to a bounded queue — it cannot fail or slow a request; when
the queue is full the job is dropped and counted. A background task (:meth:`ShadowCanary.run`)
follows the ``candidate`` alias, loads that version in its own ONNX Runtime session (never the
production batcher), scores the queued requests off the event loop and records each pair:

* live agreement statistics per (production, candidate) pair — mean and max absolute difference
  (cycles), share within ``tolerance`` cycles, share with the same health status — for ``/metrics``,
  ``/api/v1/models/canary`` and the models page;
* the pairs themselves through the :class:`~prognos.lifecycle.ports.GroundTruth` seam (the fleet
  database; bounded to ``max_rows``), so once an engine's failure
  is recorded both versions' realised errors are compared on the same requests
  (:func:`prognos.lifecycle.feedback.model_performance`).

Promotion stays one command (``prognos models promote V``); promoting the candidate clears the
alias and the canary idles until the next registration.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from prognos.errors import PrognosError
from prognos.status import StatusThresholds

if TYPE_CHECKING:
    from prognos.config import Settings
    from prognos.data.validation import ValidSequence
    from prognos.lifecycle.ports import GroundTruth
    from prognos.lifecycle.registry import Registry
    from prognos.serving.predictor import Prediction, Predictor
    from prognos.serving.service import ServedPrediction

__all__ = ["CandidateRef", "CandidateSource", "FixedCandidate", "PairStats", "RegistryCandidate", "ShadowCanary"]

log = logging.getLogger("prognos.lifecycle")


@dataclass(frozen=True)
class CandidateRef:
    """Where the candidate is: a label for people (``v2``) and its verified local bundle."""

    label: str
    path: Path


class CandidateSource(Protocol):
    def resolve(self) -> CandidateRef | None:
        """The current candidate, or None when there is none. Blocking (runs in a worker thread)."""
        ...


class RegistryCandidate:
    """The version the registry's ``candidate`` alias points at (fetched and verified)."""

    def __init__(self, registry: Registry, alias: str = "candidate") -> None:
        self.registry = registry
        self.alias = alias

    def resolve(self) -> CandidateRef | None:
        mv = self.registry.alias(self.alias)
        if mv is None or mv.status == "archived":
            return None
        return CandidateRef(f"v{mv.version}", self.registry.fetch(mv.version))


class FixedCandidate:
    """A fixed bundle (tests, or shadowing a bundle outside any registry)."""

    def __init__(self, path: Path | None, label: str = "fixed") -> None:
        self.ref = None if path is None else CandidateRef(label, Path(path))

    def resolve(self) -> CandidateRef | None:
        return self.ref


@dataclass
class PairStats:
    """Agreement of one (production, candidate) pair of model versions. Differences in cycles,
    candidate minus production."""

    production_version: str
    candidate_version: str
    n: int = 0
    sum_diff: float = 0.0
    sum_abs_diff: float = 0.0
    max_abs_diff: float = 0.0
    within_tolerance: int = 0
    same_status: int = 0

    def add(self, diff: np.ndarray, tolerance: float, same_status: np.ndarray) -> None:
        self.n += len(diff)
        self.sum_diff += float(diff.sum())
        self.sum_abs_diff += float(np.abs(diff).sum())
        self.max_abs_diff = max(self.max_abs_diff, float(np.abs(diff).max(initial=0.0)))
        self.within_tolerance += int((np.abs(diff) <= tolerance).sum())
        self.same_status += int(same_status.sum())

    def to_dict(self) -> dict[str, Any]:
        n = max(self.n, 1)
        return {"production_version": self.production_version, "candidate_version": self.candidate_version,
                "n": self.n, "mean_diff": round(self.sum_diff / n, 4), "mean_abs_diff": round(self.sum_abs_diff / n, 4),
                "max_abs_diff": round(self.max_abs_diff, 4), "agreement": round(self.within_tolerance / n, 4),
                "status_agreement": round(self.same_status / n, 4)}


@dataclass(frozen=True)
class _Job:
    engine_id: str
    seq: ValidSequence
    production_version: str
    production_rul: float
    production_status: str
    cycle: int | None


@dataclass
class _Counters:
    sampled: int = 0
    scored: int = 0
    dropped: int = 0
    errors: int = 0
    stored: int = 0
    last_error: str | None = None


@dataclass
class _Candidate:
    ref: CandidateRef
    predictor: Predictor


class ShadowCanary:
    """Scores ``fraction`` of the served predictions with the candidate, in the background."""

    def __init__(self, settings: Settings, source: CandidateSource, *, store: Callable[[], GroundTruth | None]
                 | None = None, load: Callable[[Path], Predictor] | None = None, seed: int | None = None) -> None:
        self.settings = settings
        self.source = source
        self.fraction = settings.canary_fraction
        self.tolerance = settings.canary_tolerance
        self.max_rows = settings.canary_max_rows
        self.poll_s = settings.registry_poll_s
        self._store = store or (lambda: None)
        self._load = load or self._load_predictor
        self._rng = np.random.default_rng(seed)
        self._queue: deque[_Job] = deque()
        self._max_pending = settings.canary_max_pending
        self._wake: asyncio.Event | None = None
        self.candidate: _Candidate | None = None
        self.counters = _Counters()
        self.pairs: dict[tuple[str, str], PairStats] = {}

    def _load_predictor(self, path: Path) -> Predictor:
        from prognos.serving.service import load_predictor

        return load_predictor(path, self.settings)

    @property
    def candidate_version(self) -> str | None:
        return None if self.candidate is None else self.candidate.predictor.version

    # ------------------------------------------------------------------ the request path
    def observe(self, predictor: Predictor, engine_ids: Sequence[str], seqs: Sequence[ValidSequence],
                served: Sequence[ServedPrediction]) -> None:
        """Queue a sample of this batch for shadow scoring. O(1) per prediction, never raises."""
        cand = self.candidate
        if self.fraction <= 0 or cand is None or cand.predictor.version == predictor.version or not seqs:
            return
        picked = np.flatnonzero(self._rng.random(len(seqs)) < self.fraction).tolist()
        for i in picked:
            self.counters.sampled += 1
            if len(self._queue) >= self._max_pending:
                self.counters.dropped += 1  # the candidate falls behind: shed shadow work, never requests
                continue
            p = served[i].prediction
            self._queue.append(_Job(str(engine_ids[i]), seqs[i], p.model_version, p.rul, served[i].status,
                                    p.last_cycle))
        if len(picked) and self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ the background task
    async def refresh(self) -> None:
        """Follow the candidate source: load a new candidate, or drop one that is gone."""
        try:
            ref = await asyncio.to_thread(self.source.resolve)
            if ref is None:
                if self.candidate is not None:
                    log.info("shadow canary: no candidate any more (was %s)", self.candidate.ref.label)
                self.candidate = None
                return
            if self.candidate is not None and self.candidate.ref == ref:
                return
            predictor = await asyncio.to_thread(self._load, ref.path)
            self.candidate = _Candidate(ref, predictor)
            log.info("shadow canary: scoring %.0f%% of traffic with candidate %s (%s)", 100 * self.fraction,
                     ref.label, predictor.version)
        except Exception as exc:  # an unreachable registry or a refused bundle: keep going, retry later
            self._error(exc)

    def _error(self, exc: Exception) -> None:
        self.counters.errors += 1
        self.counters.last_error = str(exc) if isinstance(exc, PrognosError) else f"{type(exc).__name__}: {exc}"
        log.warning("shadow canary: %s", self.counters.last_error)

    async def drain(self, limit: int = 256) -> int:
        """Score up to ``limit`` queued jobs with the candidate and record them. Returns jobs scored."""
        cand = self.candidate
        jobs = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
        if not jobs:
            return 0
        if cand is None:
            self.counters.dropped += len(jobs)
            return 0
        try:
            preds = await asyncio.to_thread(cand.predictor.predict_sequences, [j.engine_id for j in jobs],
                                            [j.seq for j in jobs])
        except Exception as exc:  # e.g. the candidate needs a field production does not: count, go on
            self.counters.dropped += len(jobs)
            self._error(exc)
            return 0
        self._record(jobs, preds, cand.predictor.version)
        await self._persist(jobs, [p.rul for p in preds], cand.predictor.version)
        return len(jobs)

    def _record(self, jobs: Sequence[_Job], preds: Sequence[Prediction], candidate_version: str) -> None:
        thresholds = StatusThresholds.from_settings(self.settings)
        groups: dict[str, list[int]] = {}
        for i, j in enumerate(jobs):
            groups.setdefault(j.production_version, []).append(i)
        for prod, idx in groups.items():
            stats = self.pairs.setdefault((prod, candidate_version), PairStats(prod, candidate_version))
            diff = np.array([preds[i].rul - jobs[i].production_rul for i in idx])
            # Both statuses by the one rule (prognos.status): each version's own interval lower bound.
            same = np.array([thresholds.of(preds[i].lower) == jobs[i].production_status for i in idx])
            stats.add(diff, self.tolerance, same)
        self.counters.scored += len(jobs)

    async def _persist(self, jobs: Sequence[_Job], rul: Sequence[float], candidate_version: str) -> None:
        store = self._store()
        if store is None or self.max_rows <= 0:
            return
        from prognos.lifecycle.feedback import prune_shadow, save_shadow
        from prognos.lifecycle.ports import ShadowPair

        pairs: list[ShadowPair] = [ShadowPair(j.engine_id, j.cycle, j.production_version, j.production_rul,
                                              candidate_version, float(r)) for j, r in zip(jobs, rul, strict=True)]
        try:
            self.counters.stored += await asyncio.to_thread(save_shadow, store, pairs)
            if self.counters.stored % 500 < len(pairs):  # prune now and then, not per batch
                await asyncio.to_thread(prune_shadow, store, self.max_rows)
        except Exception as exc:
            self._error(exc)

    async def run(self) -> None:
        """Follow the candidate and score queued jobs until cancelled."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        next_refresh = 0.0
        while True:
            if loop.time() >= next_refresh:
                await self.refresh()
                next_refresh = loop.time() + self.poll_s
            if not self._queue:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, next_refresh - loop.time()))
                except TimeoutError:
                    continue
            await self.drain()

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> dict[str, Any]:
        """Live state for the API and the models page."""
        c = self.counters
        cand = self.candidate
        return {
            "enabled": self.fraction > 0, "fraction": self.fraction, "tolerance_cycles": self.tolerance,
            "candidate": None if cand is None else {"label": cand.ref.label, "model_version": cand.predictor.version},
            "queued": len(self._queue), "sampled": c.sampled, "scored": c.scored, "dropped": c.dropped,
            "errors": c.errors, "stored": c.stored, "last_error": c.last_error,
            "pairs": [p.to_dict() for p in self.pairs.values()],
        }

