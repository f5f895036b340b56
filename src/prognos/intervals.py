"""Calibrated prediction intervals: split-conformal, conditional on the predicted RUL, the length of
the history and the operating regime.

Residuals ``r = true - predicted`` of out-of-fold predictions are grouped into bins of predicted
RUL (Mondrian conformal): a prediction of 120 cycles ("healthy, near the cap") errs differently from
one of 20. In each bin the interval is ``[pred + q_lo, pred + q_hi]`` with ``q_lo``/``q_hi`` the
finite-sample-corrected ``(1-level)/2`` and ``(1+level)/2`` quantiles of that bin's residuals,
clipped to ``[0, cap]``. Coverage is guaranteed (marginally, per bin) for exchangeable engines.

Each bin is split further into **cells** by what the model could see: the number of cycles of
history (fewer than a window: front-padded, less certain; ``history_edges``) and, on multi-regime
data, the operating regime of the last reading (noise differs by regime). A cell with at least
``min_cell`` residuals can **widen** its bin's interval, never narrow it; a smaller one, or a prediction
whose history or regime is not given, uses its bin's. Widen-only because a cell is only as
representative as the histories it was fitted on: training windows with a short history are almost
all "early in a long life, RUL at the cap" (residuals ~±3 cycles), while a test set truncated at
RUL ≤ 145 selects short-lived engines among its short histories — narrow cells covered 2 of FD001's
4 short test engines on every seed.

    bin of predicted RUL ─┬─ max(bin, cell) width   if the cell (history group, regime) has ≥ min_cell residuals
                          └─ the bin's quantiles     otherwise

**Late life.** A bin's lower offset is also widened to the ``(1-level)/2`` quantile of the residuals
of its windows whose true RUL is below ``late_life`` cycles (when there are enough of them): among
engines in their last ``late_life`` cycles, the truth falls below the lower bound at most
``(1-level)/2`` of the time in each bin — the side on which a planner is hurt. Those late windows are
mostly the *late* predictions of a bin, so bins of the mid range get a heavier lower tail.

**Monotone lower bound.** The status of a prediction comes from its lower bound (prognos.status), so
the lower bound must never fall as the prediction rises (an engine predicted worse must never look
healthier). Offsets are not a step function of the bin: for each context (history group, regime)
the lower bound is interpolated linearly between the bins' centres (the median prediction of each
bin), with slope 1 beyond the outer centres, after making its values at the centres non-decreasing
by lowering (never raising) the earlier ones. The upper offset is interpolated the same way.
Calibrations written before centres existed keep their step function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Cell", "IntervalCalibration", "Intervals", "calibrate"]


@dataclass(frozen=True)
class Intervals:
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class Cell:
    """Quantiles (cycles) of one (bin, history group, regime) cell and the residuals they came from."""

    q_lo: float
    q_hi: float
    n: int


@dataclass(frozen=True)
class IntervalCalibration:
    level: float
    edges: list[float]  # inner bin edges in predicted cycles, ascending (len = bins - 1)
    q_lo: list[float]  # per bin, cycles (<= 0 typically)
    q_hi: list[float]
    cap: float
    n: int
    history_edges: list[int] = field(default_factory=list)  # inner edges in cycles of history, ascending
    cells: dict[tuple[int, int, int], Cell] = field(default_factory=dict)  # (bin, history group, regime)
    centers: list[float] = field(default_factory=list)  # per bin, median prediction (cycles); [] = step function
    late_life: float | None = None  # cycles: the lower tail is also calibrated on windows with true RUL below

    def bins_of(self, pred: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), np.asarray(pred, dtype=np.float64), side="right")

    def groups_of(self, history: np.ndarray) -> np.ndarray:
        """History group of each prediction from its cycles of history."""
        return np.searchsorted(np.asarray(self.history_edges), np.asarray(history), side="right")

    def offsets(self, history_group: int | None = None, regime: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per bin, the (lower, upper) offsets (cycles) in one context: the bin's, widened by its cell
        (history group, regime) when that cell has its own quantiles, and always containing the
        prediction (an interval whose residuals all lie on one side widens to the prediction)."""
        lo, hi = np.array(self.q_lo, dtype=np.float64), np.array(self.q_hi, dtype=np.float64)
        if history_group is not None:
            for j in range(len(lo)):
                cell = self.cells.get((j, history_group, regime))
                if cell is not None:  # widen only: see the module docstring
                    lo[j], hi[j] = min(lo[j], cell.q_lo), max(hi[j], cell.q_hi)
        return np.minimum(lo, 0.0), np.maximum(hi, 0.0)

    def _bounds(self, pred: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (cycles, unclipped) of ``pred`` from per-bin offsets of one context."""
        if not self.centers:  # written before centres: the bin's step function
            b = self.bins_of(pred)
            return pred + lo[b], pred + hi[b]
        c = np.asarray(self.centers, dtype=np.float64)
        low = np.minimum.accumulate((c + lo)[::-1])[::-1]  # non-decreasing at the centres, lowered only
        lo = low - c

        def interp(offset: np.ndarray, at_centres: np.ndarray) -> np.ndarray:
            inner = np.interp(pred, c, at_centres)
            return np.where(pred < c[0], pred + offset[0], np.where(pred > c[-1], pred + offset[-1], inner))

        return np.minimum(interp(lo, low), pred), np.maximum(interp(hi, c + hi), pred)

    def apply(self, pred: np.ndarray, history: np.ndarray | None = None, regime: np.ndarray | None = None
              ) -> Intervals:
        """Intervals for ``pred`` (cycles); ``history`` (cycles seen) and ``regime`` (index of the last
        reading's regime) select the context, when given."""
        pred = np.asarray(pred, dtype=np.float64)
        lower, upper = np.empty_like(pred), np.empty_like(pred)
        if self.cells and history is not None:
            g = self.groups_of(history)
            r = np.zeros(len(pred), dtype=np.int64) if regime is None else np.asarray(regime, dtype=np.int64)
            keys = np.stack([g, r], axis=1)
            for key in np.unique(keys, axis=0) if len(pred) else ():
                m = (keys == key).all(axis=1)
                lower[m], upper[m] = self._bounds(pred[m], *self.offsets(int(key[0]), int(key[1])))
        else:
            lower, upper = self._bounds(pred, *self.offsets())
        # np.minimum/np.maximum: np.clip's values without its Python-level wrapper (per served batch)
        return Intervals(np.minimum(np.maximum(lower, 0.0), self.cap), np.minimum(np.maximum(upper, 0.0), self.cap))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "split-conformal, Mondrian bins of predicted RUL, cells by history length and regime",
            "level": self.level, "edges": self.edges, "q_lo": self.q_lo, "q_hi": self.q_hi,
            "cap": self.cap, "n_residuals": self.n, "history_edges": self.history_edges,
            "cells": [{"bin": k[0], "history": k[1], "regime": k[2], "q_lo": c.q_lo, "q_hi": c.q_hi, "n": c.n}
                      for k, c in sorted(self.cells.items())],
            "centers": self.centers, "late_life": self.late_life,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalCalibration:
        # Bundles written before cells existed have neither key: bin-only intervals, as they were.
        cells = {(int(c["bin"]), int(c["history"]), int(c["regime"])): Cell(float(c["q_lo"]), float(c["q_hi"]),
                                                                             int(c["n"]))
                 for c in d.get("cells", [])}
        return cls(float(d["level"]), [float(v) for v in d["edges"]], [float(v) for v in d["q_lo"]],
                   [float(v) for v in d["q_hi"]], float(d["cap"]), int(d["n_residuals"]),
                   [int(v) for v in d.get("history_edges", [])], cells, [float(v) for v in d.get("centers", [])],
                   None if d.get("late_life") is None else float(d["late_life"]))


def _conformal_quantile(r: np.ndarray, q: float) -> float:
    n = len(r)
    k = min(n, math.ceil((n + 1) * q)) if q >= 0.5 else max(1, math.floor((n + 1) * q))
    return float(np.sort(r)[k - 1])


def calibrate(pred: np.ndarray, true: np.ndarray, level: float, cap: float, bins: int = 4, *,
              history: np.ndarray | None = None, regime: np.ndarray | None = None,
              history_edges: list[int] | None = None, min_cell: int | None = None,
              late_life: float | None = None) -> IntervalCalibration:
    """Fit interval offsets from out-of-sample predictions ``pred`` and targets ``true`` (cycles).

    With ``history`` (cycles of history behind each prediction) and ``history_edges``, and optionally
    ``regime``, cells with at least ``min_cell`` residuals (default: enough for 2.5 expected
    residuals beyond each quantile, at least 50) get their own quantiles. With ``late_life``, each
    bin's lower offset also covers its windows whose ``true`` RUL is below it (module docstring)."""
    pred = np.asarray(pred, dtype=np.float64)
    r = np.asarray(true, dtype=np.float64) - pred
    alpha = 1.0 - level
    # Equal-count bins, each big enough for the extreme quantile to be meaningful.
    bins = max(1, min(bins, len(pred) // max(20, int(2 / alpha))))
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, bins + 1)[1:-1])).tolist() if bins > 1 else []
    b = np.searchsorted(np.asarray(edges), pred, side="right")
    need = min_cell if min_cell is not None else max(50, math.ceil(5 / alpha))
    late = np.zeros(len(pred), dtype=bool) if late_life is None else np.asarray(true) < late_life
    q_lo, q_hi, centers = [], [], []
    for j in range(len(edges) + 1):
        rj = r[b == j]
        q_lo.append(_conformal_quantile(rj, alpha / 2))
        q_hi.append(_conformal_quantile(rj, 1 - alpha / 2))
        centers.append(float(np.median(pred[b == j])))
        rl = r[(b == j) & late]
        if len(rl) >= need:  # widen only: the late-life lower tail of this bin
            q_lo[-1] = min(q_lo[-1], _conformal_quantile(rl, alpha / 2))
    cells: dict[tuple[int, int, int], Cell] = {}
    h_edges = sorted(int(v) for v in (history_edges or []))
    if history is not None:
        g = np.searchsorted(np.asarray(h_edges), np.asarray(history), side="right")
        rg = np.zeros(len(pred), dtype=np.int64) if regime is None else np.asarray(regime, dtype=np.int64)
        keys = np.stack([b, g, rg], axis=1)
        for key in np.unique(keys, axis=0):
            rc = r[(keys == key).all(axis=1)]
            if len(rc) >= need:
                cells[(int(key[0]), int(key[1]), int(key[2]))] = Cell(
                    _conformal_quantile(rc, alpha / 2), _conformal_quantile(rc, 1 - alpha / 2), len(rc))
    return IntervalCalibration(level, [float(e) for e in edges], q_lo, q_hi, cap, len(r), h_edges, cells,
                               centers if len(set(centers)) == len(centers) else [], late_life)
