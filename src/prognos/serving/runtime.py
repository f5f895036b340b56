"""The inference-runtime seam: something that maps windows to RUL. ONNX Runtime in production; a
fake for tests that exercise code around the model rather than the model."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = ["FakeRuntime", "GradientRuntime", "InferenceRuntime", "OnnxRuntime"]


class InferenceRuntime(Protocol):
    def run(self, x: np.ndarray) -> np.ndarray:
        """(batch, window, n_features) float32 -> (batch,) RUL in cycles."""
        ...


class OnnxRuntime:
    """One ONNX Runtime session. ``threads`` intra-op threads (1 keeps latency predictable and
    leaves cores to the web servers; batching supplies the throughput)."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float64).reshape(-1)


class GradientRuntime(OnnxRuntime):
    """A session of a bundle's gradient graph (``explain.onnx``): a fixed batch of ``steps`` windows ->
    their RUL (cycles) and the gradient of each RUL with respect to its window (cycles per scaled unit)."""

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        super().__init__(model_path, threads)
        self.steps = int(self._session.get_inputs()[0].shape[0])

    def gradient(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rul, grad = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(rul, np.float64).reshape(-1), np.asarray(grad, np.float64)


class FakeRuntime:
    """RUL = ``cap`` minus a multiple of the newest window row's mean (deterministic, monotone)."""

    def __init__(self, cap: float = 125.0, slope: float = 20.0) -> None:
        self.cap, self.slope, self.calls = cap, slope, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        rul: np.ndarray = np.clip(self.cap / 2 - self.slope * x[:, -1, :].mean(axis=1), 0.0, self.cap)
        return rul
