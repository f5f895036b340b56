"""The one predictor: validated readings -> feature windows -> model -> RUL with a calibrated
interval. Used by ``prognos predict``, REST, gRPC and the fleet app. Imports no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prognos.bundle import Bundle, read_bundle
from prognos.data.cmapss import Readings
from prognos.data.validation import ReadingSpec, ValidSequence, check_values, validate_sequence
from prognos.serving.runtime import InferenceRuntime, OnnxRuntime

__all__ = ["Prediction", "Predictor", "rul_status"]


@dataclass(frozen=True)
class Prediction:
    """RUL in cycles after the last reading, with the calibrated interval [lower, upper] at
    ``confidence`` nominal coverage."""

    engine_id: str
    rul: float
    lower: float
    upper: float
    confidence: float
    model_version: str
    last_cycle: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "engine_id": self.engine_id,
            "predicted_rul": round(self.rul, 3),
            "lower": round(self.lower, 3),
            "upper": round(self.upper, 3),
            "confidence_level": self.confidence,
            "model_version": self.model_version,
            "last_cycle": self.last_cycle,
        }


def rul_status(rul: float, warning: float, critical: float) -> str:
    """healthy / warning / critical by RUL thresholds (cycles)."""
    if rul < critical:
        return "critical"
    if rul < warning:
        return "warning"
    return "healthy"


class Predictor:
    """A loaded, verified bundle ready to predict.

    ``predict_windows`` is the raw model call; ``predict_sequences`` does one model call for many
    engines. Pure: the same input always gives the same output.
    """

    def __init__(self, bundle: Bundle, runtime: InferenceRuntime | None = None, *, max_readings: int = 500,
                 range_overrides: dict[str, Sequence[float]] | None = None, threads: int = 1) -> None:
        self.bundle = bundle
        self.pipeline = bundle.pipeline
        self.calibration = bundle.calibration
        self.runtime: InferenceRuntime = runtime or OnnxRuntime(bundle.model_path, threads=threads)
        ranges = dict(bundle.manifest.input_ranges)
        ranges.update(range_overrides or {})
        self.spec = ReadingSpec(tuple(bundle.manifest.input_fields), ranges, max_readings)

    @classmethod
    def from_path(cls, path: Path, **kwargs: object) -> Predictor:
        return cls(read_bundle(path), **kwargs)  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def window(self) -> int:
        return self.pipeline.window

    @property
    def confidence(self) -> float:
        return self.calibration.level

    def validate(self, readings: object, where: str = "sensor_data") -> ValidSequence:
        return validate_sequence(readings, self.spec, where)

    def window_of(self, seq: ValidSequence | np.ndarray) -> np.ndarray:
        values = seq.values if isinstance(seq, ValidSequence) else seq
        return self.pipeline.last_window(values)

    def predict_windows(self, x: np.ndarray) -> np.ndarray:
        """(batch, window, n_features) -> (batch,) RUL in cycles."""
        if len(x) == 0:
            return np.zeros(0)
        return self.runtime.run(x)

    def finish(self, engine_ids: Sequence[str], rul: np.ndarray, last_cycles: Sequence[int | None]) -> list[Prediction]:
        iv = self.calibration.apply(rul)
        return [
            Prediction(str(e), float(r), float(lo), float(hi), self.confidence, self.version,
                       None if c is None else int(c))
            for e, r, lo, hi, c in zip(engine_ids, rul, iv.lower, iv.upper, last_cycles, strict=True)
        ]

    def predict_sequences(self, engine_ids: Sequence[str], sequences: Sequence[ValidSequence]) -> list[Prediction]:
        if not sequences:
            return []
        x = np.stack([self.window_of(s) for s in sequences])
        last = [None if s.cycles is None else int(s.cycles[-1]) for s in sequences]
        return self.finish(engine_ids, self.predict_windows(x), last)

    def predict_readings(self, readings: Readings) -> list[Prediction]:
        """Every engine of a file, at its last reading. Rows are checked against the spec."""
        check_values(readings.values, self.spec, readings.source)
        engines = list(readings.engines())
        seqs = [ValidSequence(e.values, e.cycles) for e in engines]
        return self.predict_sequences([e.engine_id for e in engines], seqs)
