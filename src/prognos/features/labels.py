"""Training targets."""

from __future__ import annotations

import numpy as np

__all__ = ["piecewise_rul"]


def piecewise_rul(cycles: np.ndarray, cap: float, failure_cycle: float | None = None) -> np.ndarray:
    """Piecewise-linear RUL in cycles: flat at ``cap`` while healthy, then falling 1 per cycle to 0.

    ``failure_cycle`` defaults to the last cycle (a run-to-failure engine fails after its last row,
    so the last row has RUL 0).
    """
    end = cycles[-1] if failure_cycle is None else failure_cycle
    return np.minimum(float(cap), (end - cycles).astype(np.float64))
