"""The one predictor: validated readings -> feature windows -> model -> RUL with a calibrated
interval. Used by ``prognos predict``, REST, gRPC and the fleet app. Imports no torch.

The model loop is written once, in three steps every caller shares: :meth:`Predictor.windows`
(sequences -> a batch of feature windows), a model call (:meth:`Predictor.predict_windows`
directly, or the service's micro-batcher and cache around it) and :meth:`Predictor.finish`
(RUL -> age-corrected RUL with its calibrated interval). The health status of a prediction is not decided here: see
:mod:`prognos.status` (the interval's lower bound)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from prognos.bundle import Bundle, read_bundle
from prognos.data.cmapss import Readings
from prognos.data.validation import ReadingSpec, ValidSequence, check_values, validate_sequence
from prognos.serving.explain import Explainer, Method, baseline_rul
from prognos.serving.runtime import GradientRuntime, InferenceRuntime, OnnxRuntime

__all__ = ["SMOOTHING_WARMUP_READINGS", "Calibrated", "Prediction", "Predictor", "Strata", "history_readings"]

#: Readings beyond two windows that the causal smoothing of the feature pipeline needs to settle.
SMOOTHING_WARMUP_READINGS = 20


def history_readings(window: int) -> int:
    """How many of an engine's latest readings to feed the model for a settled window: two
    windows plus the smoothing warm-up. The fleet keeps this many per engine; drift capture
    computes features over this many."""
    return 2 * window + SMOOTHING_WARMUP_READINGS


@dataclass(frozen=True)
class Strata:
    """What a prediction's correction and interval depend on besides the model's output, (n,) each:
    ``history`` — readings behind it; ``regime`` — the last reading's operating regime; ``age`` — the
    last reading's cycle number (the history length when the readings carry no cycle numbers)."""

    history: np.ndarray
    regime: np.ndarray
    age: np.ndarray


@dataclass(frozen=True)
class Calibrated:
    """Step 3's output, (n,) each, in cycles: the age-corrected RUL and its interval."""

    rul: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


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


class Predictor:
    """A loaded, verified bundle ready to predict.

    ``predict_windows`` is the raw model call; ``predict_sequences`` does one model call for many
    engines. Pure: the same input always gives the same output.
    """

    def __init__(self, bundle: Bundle, runtime: InferenceRuntime | None = None, *, max_readings: int = 500,
                 range_overrides: dict[str, Sequence[float]] | None = None, threads: int = 1,
                 explain_method: Method = "occlusion") -> None:
        self.bundle = bundle
        self.explain_method, self.threads = explain_method, threads
        self.pipeline = bundle.pipeline
        self.calibration = bundle.calibration
        self.correction = bundle.correction
        self.runtime: InferenceRuntime = runtime or OnnxRuntime(bundle.model_path, threads=threads)
        ranges: dict[str, Sequence[float]] = dict(bundle.manifest.input_ranges)
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
    def history_readings(self) -> int:
        """Latest readings per engine that give a settled window (see :func:`history_readings`)."""
        return history_readings(self.window)

    @property
    def confidence(self) -> float:
        return self.calibration.level

    @cached_property
    def explainer(self) -> Explainer:
        """Attributions of this network (:mod:`prognos.serving.explain`); the first use runs the
        baseline window through the model once."""
        n = self.pipeline.n_features
        base = baseline_rul(self.predict_windows, self.window, n)
        graph = self.bundle.gradient_path
        if self.explain_method == "integrated_gradients" and graph is not None:
            runtime = GradientRuntime(graph, threads=self.threads)
            return Explainer(self.pipeline.sensors_ or [], self.window, base, "integrated_gradients",
                             gradient=runtime.gradient, steps=runtime.steps)
        # Bundles without a gradient graph (written before it, or of a network it is not built for).
        return Explainer(self.pipeline.sensors_ or [], self.window, base)

    def validate(self, readings: object, where: str = "sensor_data") -> ValidSequence:
        return validate_sequence(readings, self.spec, where)

    def window_of(self, seq: ValidSequence | np.ndarray) -> np.ndarray:
        values = seq.values if isinstance(seq, ValidSequence) else seq
        return self.pipeline.last_window(values)

    def windows(self, sequences: Sequence[ValidSequence]) -> np.ndarray:
        """Step 1 of the model loop: (batch, window, n_features) float32, one window per sequence."""
        return np.stack([self.window_of(s) for s in sequences])

    def strata(self, histories: Sequence[np.ndarray], cycles: Sequence[np.ndarray | None] | None = None) -> Strata:
        """Strata of each engine from its (n, 24) measurements ``histories`` and, when known, its cycle
        numbers ``cycles`` (one regime call per batch)."""
        history = np.array([len(v) for v in histories], dtype=np.int64)
        age = history.copy()
        for i, c in enumerate(cycles or ()):
            if c is not None and len(c):
                age[i] = int(c[-1])
        if not len(history) or not history.all():  # no readings: regime 0 (the bin's interval decides)
            return Strata(history, np.zeros(len(history), dtype=np.int64), age)
        return Strata(history, self.pipeline.regime_of(np.stack([v[-1] for v in histories])), age)

    def calibrate(self, rul: np.ndarray, strata: Strata) -> Calibrated:
        """Step 3 on arrays: the model's RUL (cycles) -> age-corrected RUL with its calibrated interval."""
        rul = self.correction.apply(rul, strata.age if self.correction.age_from == "cycle" else strata.history)
        iv = self.calibration.apply(rul, strata.history, strata.regime)
        return Calibrated(rul, iv.lower, iv.upper)

    def predict_windows(self, x: np.ndarray) -> np.ndarray:
        """(batch, window, n_features) -> (batch,) RUL in cycles."""
        if len(x) == 0:
            return np.zeros(0)
        return self.runtime.run(x)

    def finish(self, engine_ids: Sequence[str], rul: np.ndarray, sequences: Sequence[ValidSequence]
               ) -> list[Prediction]:
        """Step 3 of the model loop: the model's RUL (cycles) of each sequence -> predictions, corrected
        for age, with the calibrated interval, at each sequence's last cycle."""
        c = self.calibrate(rul, self.strata([s.values for s in sequences], [s.cycles for s in sequences]))
        return [
            Prediction(str(e), float(r), float(lo), float(hi), self.confidence, self.version,
                       None if s.cycles is None else int(s.cycles[-1]))
            for e, r, lo, hi, s in zip(engine_ids, c.rul, c.lower, c.upper, sequences, strict=True)
        ]

    def predict_sequences(self, engine_ids: Sequence[str], sequences: Sequence[ValidSequence]) -> list[Prediction]:
        """The model loop in one call (no cache, no batcher): windows -> model -> interval."""
        if not sequences:
            return []
        return self.finish(engine_ids, self.predict_windows(self.windows(sequences)), sequences)

    def predict_readings(self, readings: Readings) -> list[Prediction]:
        """Every engine of a file, at its last reading. Rows are checked against the spec."""
        check_values(readings.values, self.spec, readings.source)
        engines = list(readings.engines())
        seqs = [ValidSequence(e.values, e.cycles) for e in engines]
        return self.predict_sequences([e.engine_id for e in engines], seqs)
