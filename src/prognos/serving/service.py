"""The protocol-independent prediction service shared by REST, gRPC, SageMaker and the fleet app.

Front ends call these coroutines and map :mod:`prognos.errors` exceptions to their status codes.
This first version calls the model directly; micro-batching, the cache, overload protection and
hot swap live behind the same methods (serving issue).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prognos.config import Settings
from prognos.data.validation import ValidSequence
from prognos.errors import ModelUnavailableError
from prognos.serving.predictor import Prediction, Predictor, rul_status

__all__ = ["PredictionService", "ServedPrediction"]


@dataclass(frozen=True)
class ServedPrediction:
    """A prediction as the API returns it (REST JSON body and gRPC message share these fields)."""

    prediction: Prediction
    status: str  # healthy / warning / critical
    timestamp: str  # UTC ISO-8601

    def to_dict(self) -> dict[str, Any]:
        d = self.prediction.to_dict()
        d.update(status=self.status, timestamp=self.timestamp)
        return d


class PredictionService:
    def __init__(self, settings: Settings, predictor: Predictor | None = None) -> None:
        self.settings = settings
        self._predictor = predictor

    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            raise ModelUnavailableError("no model is loaded")
        return self._predictor

    @property
    def ready(self) -> bool:
        return self._predictor is not None

    def _serve(self, p: Prediction) -> ServedPrediction:
        status = rul_status(p.rul, self.settings.warning_rul, self.settings.critical_rul)
        return ServedPrediction(p, status, datetime.now(UTC).isoformat().replace("+00:00", "Z"))

    async def predict(self, engine_id: str, readings: Any, where: str = "sensor_data") -> ServedPrediction:
        """Validate one engine's raw readings (JSON-decoded list of objects) and predict."""
        return (await self.predict_many([(engine_id, readings)], where=where))[0]

    async def predict_many(self, items: Sequence[tuple[str, Any]], where: str = "requests") -> list[ServedPrediction]:
        """Validate and predict many engines; one model call. ``where`` prefixes error paths."""
        predictor = self.predictor
        seqs = [
            predictor.validate(r, f"{where}[{i}].sensor_data" if len(items) > 1 or where != "sensor_data" else where)
            for i, (_, r) in enumerate(items)
        ]
        return await self.predict_valid([e for e, _ in items], seqs)

    async def predict_valid(self, engine_ids: Sequence[str], seqs: Sequence[ValidSequence]) -> list[ServedPrediction]:
        """Predict already-validated sequences (the fleet app validates at ingestion)."""
        return [self._serve(p) for p in self.predictor.predict_sequences(engine_ids, seqs)]
