"""Age correction: the network's RUL moved by what the engine's age says — kept only where it helps.

A window of 40 cycles cannot tell an engine at cycle 60 from one at cycle 250 when both look
healthy, yet they differ: a long-lived engine that still looks healthy degrades slowly, a young one
has its whole life ahead. The correction is a small table ``g(predicted RUL, age)`` with bilinear
interpolation between knots (RUL: 0 to the cap in 6 knots; age: 8 quantiles of the fitting ages),
fitted by ridge least squares on out-of-fold predictions at **every cycle** of the training engines'
lives (no prior over when an engine is looked at: nothing here comes from any test set), shrunk
towards the identity ``g(p, a) = p`` where the data are thin, then constrained:

* monotone in the prediction, with a bounded slope: between two RUL knots ``g`` rises by between
  :data:`MIN_SLOPE` and :data:`MAX_SLOPE` times the step of the prediction (a falling prediction
  never gives a rising corrected RUL, and the correction cannot amplify the network's jitter much);
* within :data:`MAX_SHIFT` cycles of the identity;
* no extrapolation: ages and predictions beyond the outer knots take the edge value.

**Age** is the unit's own age as the predictor sees it (``age_from = "readings"``): the number of
readings in the history sent. It is never the absolute ``cycle`` field: the same engine sent with
cycle + 1000 must get the same answer. The fleet sends its latest ``history_readings`` (100 for a
40-cycle window), so an age of 100 only says "at least 100": the table is fitted on younger windows
and fades linearly to the identity at that age (``max_age``), and older engines are left exactly as
the network predicts them. Bundles written before this read the cycle field (``age_from = "cycle"``)
and are served as they were.

:func:`select_correction` fits the table under engine-level cross-validation and keeps it only if it
lowers the every-cycle RMSE of the held-out engines in **every** age bin where it acts (the others
are unchanged by construction); otherwise the bundle has no correction (the identity). Fitted state
is plain JSON; an empty dict is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["AGE_BINS", "AgeCorrection", "CorrectionChoice", "select_correction"]

AgeFrom = Literal["cycle", "readings"]

#: Bins of an engine's age for the every-cycle tables and the keep-or-drop test (cycles since its
#: first reading; lower edges, the last bin open).
AGE_BINS = (1, 51, 101, 151, 201)
_RUL_KNOTS = 6
_AGE_KNOTS = 8
_RIDGE = 10.0  # pull towards the identity, in units of "windows": thin cells stay near g(p) = p
_MIN_WINDOWS = 200  # fewer fitting windows than this: no correction (too little to learn from)
MIN_SLOPE = 0.5  # dg/dp between RUL knots: monotone, at most halves a change of the prediction...
MAX_SLOPE = 1.5  # ...and at most amplifies it by half
MAX_SHIFT = 15.0  # cycles: the most the table may move a prediction


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


def _constrain(values: np.ndarray, rul_knots: np.ndarray, cap: float) -> np.ndarray:
    """Project each age column onto: within MAX_SHIFT of the identity, slope in [MIN_SLOPE, MAX_SLOPE]."""
    v = np.clip(values, rul_knots[:, None] - MAX_SHIFT, rul_knots[:, None] + MAX_SHIFT)
    step = np.diff(rul_knots)
    for i in range(1, len(rul_knots)):
        v[i] = np.clip(v[i], v[i - 1] + MIN_SLOPE * step[i - 1], v[i - 1] + MAX_SLOPE * step[i - 1])
    return np.clip(v, 0.0, cap)


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
    age_from: AgeFrom = "readings"
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
    def fit(cls, pred: np.ndarray, age: np.ndarray, target: np.ndarray, cap: float,
            prior: str = "every-cycle", max_age: float | None = None) -> AgeCorrection:
        """Fit on out-of-fold ``pred`` (cycles), ``age`` (readings, cycles) and capped ``target`` (cycles).

        With ``max_age`` (the most readings serving sees, e.g. the fleet's history), an age of
        ``max_age`` or more says only "at least that old": the table is fitted on younger windows
        and is the identity from ``max_age`` on, reached linearly (no jump as an engine ages)."""
        pred, age, target = (np.asarray(a, dtype=np.float64) for a in (pred, age, target))
        if max_age is not None:
            young = age < max_age
            pred, age, target = pred[young], age[young], target[young]
        # With max_age, the oldest free knot is a quantile below the youngest's maximum: the table
        # fades to the identity over the last stretch of ages, not within one reading.
        top = 1.0 if max_age is None else (_AGE_KNOTS - 2) / (_AGE_KNOTS - 1)
        age_knots = np.unique(np.round(np.quantile(age, np.linspace(0, top, _AGE_KNOTS - (max_age is not None)))))\
            if len(age) else age
        if max_age is not None:
            age_knots = np.append(age_knots[age_knots < max_age], float(max_age))
        if len(pred) < _MIN_WINDOWS or len(age_knots) < 2:
            return cls(cap=cap, prior="off")
        rul_knots = np.linspace(0.0, cap, _RUL_KNOTS)
        x = (_hat(pred, rul_knots)[:, :, None] * _hat(age, age_knots)[:, None, :]).reshape(len(pred), -1)
        identity = np.repeat(rul_knots, len(age_knots))
        # With max_age the last age column is pinned to the identity; the others are solved for.
        free = np.ones(x.shape[1], dtype=bool)
        if max_age is not None:
            free[len(age_knots) - 1::len(age_knots)] = False
        xf, rhs = x[:, free], target - x[:, ~free] @ identity[~free]
        a = xf.T @ xf + _RIDGE * np.eye(int(free.sum()))
        flat = identity.copy()
        flat[free] = np.linalg.solve(a, xf.T @ rhs + _RIDGE * identity[free])
        v = _constrain(flat.reshape(len(rul_knots), len(age_knots)), rul_knots, cap)
        return cls(tuple(float(k) for k in rul_knots), tuple(float(k) for k in age_knots),
                   tuple(tuple(round(float(c), 4) for c in row) for row in v),
                   cap, prior, len(pred))

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
        return {"method": "bilinear table of (predicted RUL, age), ridge towards the identity, monotone in the "
                "prediction with bounded slope", "prior": self.prior, "age_from": self.age_from,
                "n_windows": self.n, "cap": self.cap, "rul_knots": list(self.rul_knots),
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
        age_from = d.get("age_from", "cycle")  # bundles without the key read the cycle field
        if age_from not in ("cycle", "readings"):
            raise ValueError(f"correction: age_from must be 'cycle' or 'readings', not {age_from!r}")
        return cls(rk, ak, values, float(d["cap"]), str(d.get("prior", "")), int(d.get("n_windows", 0)), age_from)


@dataclass(frozen=True)
class CorrectionChoice:
    """What :func:`select_correction` decided and the held-out RMSE (cycles) per age bin behind it."""

    correction: AgeCorrection
    kept: bool
    by_age: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "rule": "kept only if it lowers the held-out every-cycle RMSE in every age bin "
                "where it acts and leaves the others as they were",
                "by_age": self.by_age}


def select_correction(pred: np.ndarray, target: np.ndarray, engine_ids: np.ndarray, age: np.ndarray,
                      true_age: np.ndarray, cap: float, folds: int = 5, seed: int = 0,
                      max_age: float | None = None) -> CorrectionChoice:
    """Fit the table on out-of-fold ``pred`` (cycles) with ``age`` (what serving will see, cycles)
    against capped ``target``; cross-validate it by engine (``folds`` groups) and keep it only if
    the held-out every-cycle RMSE falls in every bin of ``true_age`` (cycles since the engine's first
    reading; :data:`AGE_BINS`) where it acts (with ``max_age``, a bin of engines all at least that
    old is left exactly as it was: the table is the identity there)."""
    pred, target, age = (np.asarray(a, dtype=np.float64) for a in (pred, target, age))
    ids = np.unique(engine_ids)
    group = dict(zip(ids.tolist(), np.random.default_rng(seed + 104729).permutation(len(ids)) % folds, strict=True))
    fold = np.array([group[e] for e in np.asarray(engine_ids).tolist()])
    held = np.empty_like(pred)
    for k in range(folds):
        m = fold == k
        held[m] = AgeCorrection.fit(pred[~m], age[~m], target[~m], cap, max_age=max_age).apply(pred[m], age[m])
    bins = np.searchsorted(np.asarray(AGE_BINS), np.asarray(true_age), side="right") - 1
    by_age, better = [], True
    for j in np.unique(bins):
        m = bins == j
        before = float(np.sqrt(np.mean((pred[m] - target[m]) ** 2)))
        after = float(np.sqrt(np.mean((held[m] - target[m]) ** 2)))
        lo = AGE_BINS[j]
        label = f">= {lo}" if j == len(AGE_BINS) - 1 else f"{lo}-{AGE_BINS[j + 1] - 1}"
        acts = max_age is None or bool((age[m] < max_age).any())
        by_age.append({"age": label, "n": int(m.sum()), "rmse_without": round(before, 3), "rmse_with": round(after, 3),
                       "acts": acts})
        better &= after < before if acts else after <= before
    full = AgeCorrection.fit(pred, age, target, cap, max_age=max_age)
    kept = better and not full.is_identity
    return CorrectionChoice(full if kept else AgeCorrection(cap=cap), kept, by_age)
