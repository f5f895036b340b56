"""The seam between "something that predicts" and what uses predictions (the fleet app).

:class:`Predictions` is the small Protocol the fleet's ingestor scores through. Today
:class:`~prognos.serving.service.PredictionService` (the local ONNX model behind a cache and a
micro-batcher) implements it. The scale-out ``gateway`` role passes a client of a remote
inference pool instead (gRPC; the composition root's ``build_app``): it needs these five members
and nothing else, so the fleet never knows where the model runs.

:class:`FakePredictions` is the fake shipped with the seam: a fixed reading contract and a
function of the readings, for fleet tests that must not depend on a trained model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from prognos.data.validation import ReadingSpec, ValidSequence
from prognos.errors import ModelUnavailableError
from prognos.serving.predictor import Prediction
from prognos.serving.service import ServedPrediction
from prognos.status import StatusThresholds

__all__ = ["FakePredictions", "Predictions"]


@runtime_checkable
class Predictions(Protocol):
    """What the fleet needs from a model, wherever it runs."""

    @property
    def ready(self) -> bool:
        """A model can answer now (readiness tells the truth: False while loading or draining)."""
        ...

    @property
    def model_version(self) -> str | None:
        """The version answering now, or None without a model."""
        ...

    def reading_spec(self) -> ReadingSpec:
        """The loaded model's reading contract (required fields, plausible ranges) that ingestion
        validates against. Raises :class:`~prognos.errors.ModelUnavailableError` without a model."""
        ...

    def history_readings(self) -> int:
        """How many of an engine's latest readings a prediction should see (window + warm-up).
        Raises :class:`~prognos.errors.ModelUnavailableError` without a model."""
        ...

    async def predict_valid(self, engine_ids: Sequence[str], seqs: Sequence[ValidSequence], *,
                            explain: bool = False) -> list[ServedPrediction]:
        """Predict already-validated sequences, in order; status by :mod:`prognos.status`;
        ``explain``: each with its explanation (:mod:`prognos.serving.explain`) when the model can give
        one. Raises :mod:`prognos.errors` (ModelUnavailableError, OverloadedError, ...)."""
        ...


@dataclass
class FakePredictions:
    """A stand-in model: ``rul(seq)`` cycles with a fixed ``[rul - below, rul + above]`` interval."""

    spec: ReadingSpec
    rul: Callable[[ValidSequence], float]
    below: float = 10.0
    above: float = 10.0
    version: str | None = "fake-1"
    history: int = 80
    thresholds: StatusThresholds = field(default_factory=lambda: StatusThresholds(40.0, 15.0))
    calls: int = 0

    @property
    def ready(self) -> bool:
        return self.version is not None

    @property
    def model_version(self) -> str | None:
        return self.version

    def reading_spec(self) -> ReadingSpec:
        if self.version is None:
            raise ModelUnavailableError("no model is loaded")
        return self.spec

    def history_readings(self) -> int:
        if self.version is None:
            raise ModelUnavailableError("no model is loaded")
        return self.history

    async def predict_valid(self, engine_ids: Sequence[str], seqs: Sequence[ValidSequence], *,
                            explain: bool = False) -> list[ServedPrediction]:
        if self.version is None:
            raise ModelUnavailableError("no model is loaded")
        self.calls += 1
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        out = []
        for e, s in zip(engine_ids, seqs, strict=True):
            r = float(self.rul(s))
            lower = max(0.0, r - self.below)
            p = Prediction(str(e), r, lower, r + self.above, 0.9, self.version,
                           None if s.cycles is None else int(s.cycles[-1]))
            out.append(ServedPrediction(p, self.thresholds.of(lower), now))
        return out
