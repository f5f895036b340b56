"""Age correction: the network's RUL moved by what the engine's age says.

A window of 40 cycles cannot tell an engine at cycle 60 from one at cycle 250 when both look
healthy, yet they differ: a long-lived engine that still looks healthy degrades slowly, a young one
has its whole life ahead. The correction is a small table ``g(predicted RUL, age)`` with bilinear
interpolation between knots (RUL: 0 to the cap in 6 knots; age: 8 quantiles of the training cycles),
fitted by ridge least squares on out-of-fold predictions, shrunk towards the identity
``g(p, a) = p`` where the data are thin, and clipped to ``[0, cap]``. Inputs beyond the outer knots
take the edge value (no extrapolation).

Which windows it is fitted on sets the prior over the RUL at which an engine is looked at:

* ``"test-like"`` (default) — windows whose RUL lies in [5, 150] cycles with at least 31 cycles of
  history, each once: an engine observed at a random point of the last 150 cycles of its life, as in
  the C-MAPSS test sets (the published truth ranges from 7 to 145 cycles).
* ``"every-cycle"`` — every training window equally: an engine observed at every cycle of its life.

Age is the cycle number of the last reading; without cycle numbers, the number of readings given
(a lower bound). Fitted state is plain JSON; an empty dict is the identity (bundles without one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["AgeCorrection", "prior_mask"]

Prior = Literal["test-like", "every-cycle"]

#: The test-like prior: RUL at the cut in [5, 150] cycles, at least 31 cycles of history (cycles).
TEST_LIKE_RUL = (5, 150)
TEST_LIKE_MIN_HISTORY = 31
_RUL_KNOTS = 6
_AGE_KNOTS = 8
_RIDGE = 10.0  # pull towards the identity, in units of "windows": thin cells stay near g(p) = p
_MIN_WINDOWS = 200  # fewer fitting windows than this: no correction (too little to learn from)


def prior_mask(engine_ids: np.ndarray, cycles: np.ndarray, rul: np.ndarray, prior: Prior) -> np.ndarray:
    """Which training windows (one per row: engine, cycle, uncapped RUL in cycles) a prior keeps."""
    if prior == "every-cycle":
        return np.ones(len(cycles), dtype=bool)
    lo, hi = TEST_LIKE_RUL
    return (rul >= lo) & (rul <= hi) & (cycles >= TEST_LIKE_MIN_HISTORY)


def _hat(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """(n, k) linear-interpolation weights of ``x`` on ``knots`` (clamped to the outer knots)."""
    # np.minimum/np.maximum, not np.clip: the same values, without np.clip's Python-level wrapper,
    # which cost more than the arithmetic on a served batch of one.
    x = np.minimum(np.maximum(np.asarray(x, dtype=np.float64), knots[0]), knots[-1])
    j = np.minimum(np.maximum(np.searchsorted(knots, x, side="right") - 1, 0), len(knots) - 2)
    t = (x - knots[j]) / (knots[j + 1] - knots[j])
    w = np.zeros((len(x), len(knots)))
    rows = np.arange(len(x))
    w[rows, j] = 1.0 - t
    w[rows, j + 1] = t
    return w


@dataclass(frozen=True)
class AgeCorrection:
    """``values[i][j]`` is the corrected RUL at ``rul_knots[i]`` and ``age_knots[j]`` (cycles).
    No knots: the identity."""

    rul_knots: tuple[float, ...] = ()
    age_knots: tuple[float, ...] = ()
    values: tuple[tuple[float, ...], ...] = ()
    cap: float = 125.0
    prior: str = "off"
    n: int = 0  # windows it was fitted on
    # The same knots and table as arrays, built once: apply() runs on every served batch.
    _arrays: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_arrays", (np.asarray(self.rul_knots, dtype=np.float64),
                                             np.asarray(self.age_knots, dtype=np.float64),
                                             np.asarray(self.values, dtype=np.float64)))

    @property
    def is_identity(self) -> bool:
        return not self.rul_knots

    @classmethod
    def fit(cls, pred: np.ndarray, age: np.ndarray, target: np.ndarray, cap: float, prior: str) -> AgeCorrection:
        """Fit on out-of-fold ``pred`` (cycles), ``age`` (cycles) and capped ``target`` (cycles)."""
        pred, age, target = (np.asarray(a, dtype=np.float64) for a in (pred, age, target))
        age_knots = np.unique(np.round(np.quantile(age, np.linspace(0, 1, _AGE_KNOTS)))) if len(age) else age
        if len(pred) < _MIN_WINDOWS or len(age_knots) < 2:
            return cls(cap=cap, prior="off")
        rul_knots = np.linspace(0.0, cap, _RUL_KNOTS)
        x = (_hat(pred, rul_knots)[:, :, None] * _hat(age, age_knots)[:, None, :]).reshape(len(pred), -1)
        identity = np.repeat(rul_knots, len(age_knots))
        a = x.T @ x + _RIDGE * np.eye(x.shape[1])
        v = np.linalg.solve(a, x.T @ target + _RIDGE * identity).reshape(len(rul_knots), len(age_knots))
        return cls(tuple(float(k) for k in rul_knots), tuple(float(k) for k in age_knots),
                   tuple(tuple(round(float(c), 4) for c in row) for row in np.clip(v, 0.0, cap)), cap, prior, len(pred))

    def apply(self, pred: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Corrected RUL (cycles) for ``pred`` (cycles) at ``age`` (cycles), clipped to [0, cap]."""
        pred = np.asarray(pred, dtype=np.float64)
        if self.is_identity or not len(pred):
            return pred
        rul_knots, age_knots, values = self._arrays
        out = np.einsum("ni,ij,nj->n", _hat(pred, rul_knots), values, _hat(np.asarray(age), age_knots))
        return np.minimum(np.maximum(out, 0.0), self.cap)  # clip (see _hat)

    def to_dict(self) -> dict[str, Any]:
        if self.is_identity:
            return {}
        return {"method": "bilinear table of (predicted RUL, age), ridge towards the identity",
                "prior": self.prior, "n_windows": self.n, "cap": self.cap, "rul_knots": list(self.rul_knots),
                "age_knots": list(self.age_knots), "values": [list(r) for r in self.values]}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AgeCorrection:
        if not d:
            return cls()
        rk, ak = tuple(float(k) for k in d["rul_knots"]), tuple(float(k) for k in d["age_knots"])
        values = tuple(tuple(float(c) for c in row) for row in d["values"])
        if len(rk) < 2 or len(ak) < 2 or len(values) != len(rk) or any(len(r) != len(ak) for r in values):
            raise ValueError("correction: the value table does not match its knots")
        if np.any(np.diff(rk) <= 0) or np.any(np.diff(ak) <= 0):
            raise ValueError("correction: knots must increase")
        return cls(rk, ak, values, float(d["cap"]), str(d.get("prior", "")), int(d.get("n_windows", 0)))
