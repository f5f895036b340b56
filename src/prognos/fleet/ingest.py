"""Telemetry ingestion: validate -> store (one transaction, committed) -> score -> alert.

One code path for REST (JSON and file upload), gRPC streaming and ``prognos ingest``. Readings
are validated by THE reading validator (:func:`prognos.data.validation.validate_sequence`) with
the loaded model's :class:`ReadingSpec`; ingestion additionally needs a cycle on every reading
(it is half of the idempotency key). A call returns only after its readings are committed;
scoring and alerting follow and never make an ingest fail (no model -> no prediction, the
readings are kept).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prognos.config import Settings
from prognos.data.cmapss import parse_readings_text
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import (
    ENGINE_ID_PATTERN,
    ReadingSpec,
    ValidSequence,
    check_engine_id,
    check_values,
    validate_sequence,
)
from prognos.errors import ModelUnavailableError, NotFoundError, PrognosError, ValidationError
from prognos.fleet.alerts import AlertRules
from prognos.fleet.committer import GroupCommitter
from prognos.fleet.notify import Notifier
from prognos.fleet.records import (
    EngineScore,
    History,
    IngestResult,
    PredictionRecord,
    ReadingBatch,
    StoredBatch,
)
from prognos.fleet.store import FleetStore
from prognos.fleet.windows import WindowCache
from prognos.serving.ports import Predictions
from prognos.serving.predictor import history_readings
from prognos.serving.service import ServedPrediction

__all__ = ["ENGINE_ID_PATTERN", "Ingestor", "check_engine_id"]

log = logging.getLogger("prognos.fleet")

_SCORE_SLICE = 32  # engines scored per step of a multi-engine ingest (an upload)


@dataclass(frozen=True)
class _Scored:
    predictions: list[PredictionRecord] = field(default_factory=list)
    error: str | None = None


class Ingestor:
    """Implements the gRPC server's ``ingestor`` Protocol (``await ingest(engine_id, readings)``)."""

    def __init__(self, settings: Settings, store: FleetStore, service: Predictions | None,
                 notifier: Notifier, rules: AlertRules | None = None) -> None:
        self.settings = settings
        self.store = store
        self.service = service
        self.notifier = notifier
        self.rules = rules or AlertRules(settings)
        self.windows = WindowCache(self.history_length())
        self.writer = GroupCommitter(store, on_readings=self.windows.committed,
                                     min_free_bytes=int(settings.storage_min_free_mb * 2**20))

    # ------------------------------------------------------------------ validation
    def spec(self) -> ReadingSpec:
        """The loaded model's reading contract; without a model only the structure is checked."""
        if self.service is not None and self.service.ready:
            return self.service.reading_spec()
        return ReadingSpec(required=(), ranges={}, max_readings=self.settings.max_readings)

    def history_length(self) -> int:
        """Readings scored per engine (window plus warm-up so the smoothing settles)."""
        readings = history_readings(30)  # without a model: a common window
        if self.service is not None and self.service.ready:
            readings = self.service.history_readings()
        return max(readings, self.settings.alert_stuck_readings)

    def validate(self, engine_id: str, readings: Any, where: str = "readings", spec: ReadingSpec | None = None
                 ) -> ReadingBatch:
        """One engine's JSON-decoded readings (a list, or one object) -> a batch ready to store."""
        check_engine_id(engine_id)
        if isinstance(readings, dict):
            readings = [readings]
        seq = validate_sequence(readings, spec or self.spec(), where)
        if seq.cycles is None:
            raise ValidationError(f"{where}[0].cycle: missing (ingestion stores readings by engine and cycle)")
        return ReadingBatch(engine_id, seq.cycles, seq.values)

    def parse_file(self, text: str | Iterable[str], source: str, *, engine_prefix: str = "",
                   engine_id: str | None = None, lines_hint: int | None = None) -> list[ReadingBatch]:
        """C-MAPSS text or CSV -> one batch per engine. One file-validation path, the one
        ``prognos predict --file`` takes: the parser checks numbers, finiteness and cycle order
        (naming the line); :func:`~prognos.data.validation.check_values` checks the model's
        fields and ranges on the whole array at once (naming the row); the engine-id rule names
        the engine. ``engine_id`` maps a single-engine file onto that engine."""
        readings = parse_readings_text(text, source, lines_hint)
        engines = list(readings.engines())
        if engine_id is not None and len(engines) != 1:
            raise ValidationError(f"{source}: holds {len(engines)} engines; upload one engine's readings to "
                                  f"/engines/{engine_id}/readings/upload or use /readings/upload")
        spec = self.spec()
        batches = []
        for e in engines:
            eid = engine_id if engine_id is not None else f"{engine_prefix}{e.engine_id}"
            check_engine_id(eid, f"{source}: engine {e.engine_id}")
            check_values(e.values, spec, f"{source}: engine {e.engine_id}")
            batches.append(ReadingBatch(eid, e.cycles, e.values))
        return batches

    # ------------------------------------------------------------------ ingestion
    async def ingest(self, engine_id: str, readings: Any) -> IngestResult:
        """Validate, store and score one engine's readings (the REST and gRPC entry)."""
        try:
            batch = self.validate(engine_id, readings)
        except ValidationError as exc:
            await self._note_rejection(engine_id, readings, exc)
            raise
        return await self.ingest_batches([batch])

    async def ingest_file(self, text: str, source: str, *, engine_prefix: str = "", engine_id: str | None = None
                          ) -> IngestResult:
        batches = self.parse_file(text, source, engine_prefix=engine_prefix, engine_id=engine_id)
        return await self.ingest_batches(batches)

    async def ingest_batches(self, batches: Sequence[ReadingBatch]) -> IngestResult:
        stored = await self.writer.add_readings(batches)  # committed when this returns
        accepted = [s for s in stored if s.accepted]
        predictions: list[PredictionRecord] = []
        error = None
        # A file of a thousand engines is scored a slice at a time: each slice's event-loop work
        # (windows, alert rules) stays short, so /health and predictions are answered in between.
        for i in range(0, len(accepted), _SCORE_SLICE):
            scored = await self._score(accepted[i:i + _SCORE_SLICE])
            predictions.extend(scored.predictions)
            error = error or scored.error
        return IngestResult(sum(s.accepted for s in stored), sum(s.duplicates for s in stored), stored,
                            predictions, error)

    # ------------------------------------------------------------------ scoring + alerts
    async def _score(self, stored: Sequence[StoredBatch]) -> _Scored:
        if not stored:
            return _Scored()
        spec = self.spec()
        try:
            bases: dict[str, int | None] = {}
            histories = await self._histories([s.engine_id for s in stored], bases)
        except Exception as exc:  # the readings are committed: a failed read must not turn the 2xx into an error
            log.warning("ingested without scoring (reading the history failed): %s", exc)
            return _Scored([], "scoring skipped: the stored history could not be read")
        predictions: dict[str, PredictionRecord] = {}
        error = None
        try:
            predictions = await self._predict(histories)
        except PrognosError as exc:
            error = str(exc)
            log.warning("ingested without predicting: %s", exc)
        except Exception as exc:  # scoring must never lose an acknowledged ingest
            error = "prediction failed"
            log.exception("prediction after ingest failed: %s", exc)
        scores = [EngineScore(h.engine_id, int(h.cycles[-1]), predictions.get(h.engine_id),
                              self.rules.evaluate(h, spec, predictions.get(h.engine_id)),
                              bases.get(h.engine_id), self.rules.policy, self.rules.debounce)
                  for h in histories if len(h)]
        try:
            changes = await self.writer.save_scores(scores)
        except Exception as exc:
            log.exception("storing predictions/alerts failed: %s", exc)
            return _Scored([], "storing the prediction failed")
        for change in changes:
            self.notifier.notify(change)
        return _Scored([predictions[h.engine_id] for h in histories if h.engine_id in predictions], error)

    async def _histories(self, engine_ids: Sequence[str], bases: dict[str, int | None] | None = None
                         ) -> list[History]:
        """The engines' latest readings: from the window cache, else read (and cached)."""
        n = self.history_length()
        self.windows.resize(n)
        found = {e: h for e in engine_ids if (h := self.windows.get(e)) is not None}
        if bases is not None:  # each history's version, taken with it (a commit may land during the reads below)
            bases.update({e: self.windows.version(e) for e in found})
        missing = [e for e in engine_ids if e not in found]
        if missing:
            generations = {e: self.windows.generation(e) for e in missing}
            versions = await asyncio.to_thread(self.store.versions, missing)  # before the history
            for h in await asyncio.to_thread(self.store.history, missing, n):
                found[h.engine_id] = h
                self.windows.fill(h, generations[h.engine_id], versions.get(h.engine_id))
                if bases is not None:
                    bases[h.engine_id] = versions.get(h.engine_id)
        return [found[e] for e in engine_ids]

    async def _predict(self, histories: Sequence[History]) -> dict[str, PredictionRecord]:
        if self.service is None:
            return {}

        ready = self._usable(histories)
        served = await self.service.predict_valid([h.engine_id for h in ready],
                                                  [ValidSequence(h.values, h.cycles) for h in ready])
        out = {}
        for h, sp in zip(ready, served, strict=True):
            p = sp.prediction
            out[h.engine_id] = PredictionRecord(h.engine_id, int(h.cycles[-1]), p.rul, p.lower, p.upper,
                                                p.confidence, self.rules.status(p.lower), p.model_version)
        return out

    def _usable(self, histories: Sequence[History]) -> list[History]:
        """The histories the loaded model can score. Readings stored while no model was loaded were
        checked for structure only: rows lacking a channel this model needs are left out rather than
        fed to it as NaN (an engine left with none is skipped)."""
        assert self.service is not None
        required = [MEASUREMENT_FIELDS.index(f) for f in self.service.reading_spec().required]
        ready = []
        for h in histories:
            usable = ~np.isnan(h.values[:, required]).any(axis=1)
            if usable.any():
                ready.append(h if usable.all() else History(h.engine_id, h.cycles[usable], h.values[usable]))
        return ready

    async def explain(self, engine_id: str) -> ServedPrediction | None:
        """The engine's current prediction with its explanation, on the stored history a scoring
        would use (None: no usable readings). Raises ModelUnavailableError without a model."""
        if self.service is None:
            raise ModelUnavailableError("no model is loaded: this server stores readings without predicting")
        ready = self._usable(await self._histories([engine_id]))
        if not ready or not len(ready[0]):
            return None
        h = ready[0]
        return (await self.service.predict_valid([engine_id], [ValidSequence(h.values, h.cycles)], explain=True))[0]

    async def _note_rejection(self, engine_id: str, readings: Any, exc: ValidationError) -> None:
        """A batch refused only because a sensor the model needs is missing (``missing_sensor``) or
        implausible (``out_of_range``) is a data-quality event of a known engine: open an alert.
        The batch itself is still refused; anything else wrong with it is a client bug, not a sensor's."""
        # The validator classified the refusal (ValidationError.kind): no second pass needed. A
        # missing_sensor / out_of_range refusal is raised only after everything else about the
        # reading checked out, so kind alone tells a sensor's fault from a client's.
        kind = exc.kind
        if kind not in ("missing_sensor", "out_of_range") or ENGINE_ID_PATTERN.fullmatch(engine_id) is None:
            return
        try:
            engine = await asyncio.to_thread(self.store.get_engine, engine_id)
        except NotFoundError:
            return
        conditions = dict(self.rules.rejected(engine_id, kind, str(exc)))
        score = EngineScore(engine_id, engine.last_cycle or 0, None, conditions, debounce=self.rules.debounce)
        try:
            for change in await self.writer.save_scores([score]):
                self.notifier.notify(change)
        except Exception as err:  # the 422 must still reach the client
            log.exception("recording a %s alert failed: %s", kind, err)

