"""Why this RUL: per-prediction attributions of the served ONNX network, computed with ONNX Runtime
only (no torch, no gradients in the bundle).

**Method — occlusion** (the default, chosen by measurement: docs/model-card.md, "Explanations").
The model reads a window of per-regime z-scored, smoothed channels. The **baseline** of a channel
is 0 in that scaled space: its per-regime training mean, i.e. an engine reading exactly its
regime's training average. For a window ``x`` (window, n_channels):

* channel ``c``'s contribution is ``f(x) - f(x with channel c at its baseline over the whole window)``
  (cycles; negative: the channel pulls the RUL down, towards failure);
* time span ``s``'s contribution is ``f(x) - f(x with every channel at its baseline during s)``;
  spans cut the window into equal runs of cycles, oldest first: how recent the driving evidence is;
* since when: the newest spans that carry 80 % of the spans' summed contribution start at
  ``since_cycles_ago`` (cycle ``since_cycle``): the readings the RUL rests on;
* additivity: ``model_rul = baseline_rul + sum(channel contributions) + interaction`` exactly, where
  ``baseline_rul = f(all channels at baseline)`` and ``interaction`` is what the channels do only
  together (reported, never hidden). The served ``predicted_rul`` is ``model_rul`` after the bundle's
  age correction.

All perturbed windows of one explanation go through the model in ONE batched call
(``n_channels + spans`` windows; the baseline's RUL is computed once per loaded model).

**Method — shapley** (measured against occlusion, not the default): antithetic permutation sampling
of channel Shapley values, the same baseline. Each permutation adds channels to the baseline one by
one; the marginal changes along a permutation sum exactly to ``model_rul - baseline_rul``, so the
interaction term is 0. ``pairs`` permutation pairs cost ``2 * pairs * (n_channels - 1)`` windows.

**Method — integrated_gradients** (needs the bundle's gradient graph ``explain.onnx``, written at
training time; the same baseline): attribution ``(x - 0) * mean_k grad f(alpha_k x)`` over the
midpoints ``alpha_k = (k + 1/2) / steps`` of the straight path from the baseline to ``x``, all
``steps`` points in ONE call of the gradient graph. Channel ``c``'s contribution is the sum over the
window's cycles of its attributions, span ``s``'s the sum over its cycles and channels (from the same
gradients). Completeness: ``model_rul - baseline_rul = sum(contributions) + residual``; the residual
is the path integral's discretisation error (0 as steps grow), reported as ``interaction``.

This module is numpy only and imports nothing above the serving layer's predictor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from prognos.data.schema import CHANNELS, Channel

__all__ = ["BASELINE", "METHODS", "SINCE_SHARE", "ChannelContribution", "Explainer", "Explanation", "GradientCall",
           "Method", "SpanContribution", "baseline_rul", "global_importance"]

Method = Literal["occlusion", "shapley", "integrated_gradients"]
METHODS: tuple[Method, ...] = ("occlusion", "shapley", "integrated_gradients")

BASELINE = ("every channel at its per-regime training mean (0 in the model's scaled input space) over the "
            "whole window")
_RELATION = {
    "occlusion": "model_rul = baseline_rul + sum(contributions) + interaction; predicted_rul is model_rul after "
                 "the age correction",
    "shapley": "model_rul = baseline_rul + sum(contributions) (interaction is 0 by construction); predicted_rul "
               "is model_rul after the age correction",
    "integrated_gradients": "model_rul = baseline_rul + sum(contributions) + interaction, where interaction is "
                            "the integration's discretisation residual (completeness); predicted_rul is model_rul "
                            "after the age correction",
}

#: Share of the time spans' summed contribution that the newest spans must carry to say "since when".
SINCE_SHARE = 0.8

#: (batch, window, n_channels) float32 -> (batch,) RUL in cycles: the predictor's model call.
ModelCall = Callable[[np.ndarray], np.ndarray]
#: (steps, window, n_channels) float32 -> ((steps,) RUL, (steps, window, n_channels) d RUL / d window):
#: the gradient graph's call (:class:`prognos.serving.runtime.GradientRuntime`).
GradientCall = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ChannelContribution:
    """One input channel's share of this RUL, in cycles (negative: it pulls the RUL down)."""

    field: str  # the reading field, e.g. "s11"
    channel: Channel  # display name and unit
    contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "name": self.channel.name, "unit": self.channel.unit,
                "contribution": round(self.contribution, 3)}


@dataclass(frozen=True)
class SpanContribution:
    """A run of the window's cycles, ``cycles_ago_from`` >= ``cycles_ago_to`` (0 = the last reading),
    and the RUL change (cycles) when every channel is at its baseline during it. ``first_cycle`` and
    ``last_cycle`` are the readings' cycle numbers when they carry cycles."""

    cycles_ago_from: int
    cycles_ago_to: int
    contribution: float
    first_cycle: int | None = None
    last_cycle: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cycles_ago_from": self.cycles_ago_from, "cycles_ago_to": self.cycles_ago_to,
                "first_cycle": self.first_cycle, "last_cycle": self.last_cycle,
                "contribution": round(self.contribution, 3)}


@dataclass(frozen=True)
class Explanation:
    """One prediction's attributions. RUL values in cycles; ``contributions`` largest |value| first."""

    method: str
    model_rul: float  # the network's output on the window (before the age correction)
    baseline_rul: float  # the network's output on the baseline window
    contributions: tuple[ChannelContribution, ...]
    interaction: float
    spans: tuple[SpanContribution, ...]

    @property
    def since(self) -> SpanContribution | None:
        """Since when the evidence drives this RUL: the oldest span of the shortest run of the newest
        spans that carries :data:`SINCE_SHARE` of the spans' summed contribution (None without spans
        or when they sum to about nothing)."""
        total = sum(s.contribution for s in self.spans)
        if abs(total) < 1e-6:
            return None
        acc = 0.0
        for span in reversed(self.spans):
            acc += span.contribution
            if acc / total >= SINCE_SHARE:
                return span
        return self.spans[0]

    def to_dict(self) -> dict[str, Any]:
        since = self.since
        return {
            "method": self.method, "baseline": BASELINE, "relation": _RELATION[self.method],
            "model_rul": round(self.model_rul, 3), "baseline_rul": round(self.baseline_rul, 3),
            "interaction": round(self.interaction, 3),
            "since_cycles_ago": None if since is None else since.cycles_ago_from,
            "since_cycle": None if since is None else since.first_cycle,
            "contributions": [c.to_dict() for c in self.contributions],
            "spans": [s.to_dict() for s in self.spans],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        """The inverse of :meth:`to_dict` (an explanation relayed by another server, e.g. over gRPC)."""
        return cls(
            str(d["method"]), float(d["model_rul"]), float(d["baseline_rul"]),
            tuple(ChannelContribution(c["field"], Channel(c["name"], c["unit"]), float(c["contribution"]))
                  for c in d["contributions"]),
            float(d["interaction"]),
            tuple(SpanContribution(int(s["cycles_ago_from"]), int(s["cycles_ago_to"]), float(s["contribution"]),
                                   s.get("first_cycle"), s.get("last_cycle")) for s in d["spans"]),
        )


class Explainer:
    """Attributions of one loaded network (see the module docstring).

    ``fields`` name the model's input channels in order (the pipeline's sensors); ``baseline_rul``
    is the network's RUL on the baseline window (:func:`baseline_rul`); ``spans`` how many equal runs
    of cycles the window is cut into (0: none); ``pairs`` the Shapley permutation pairs; ``gradient``
    the gradient graph's call and ``steps`` its fixed batch (integrated gradients only).
    """

    def __init__(self, fields: Sequence[str], window: int, baseline_rul: float, method: Method = "occlusion",
                 spans: int = 4, pairs: int = 1, seed: int = 0, gradient: GradientCall | None = None,
                 steps: int = 0) -> None:
        if method not in METHODS:
            raise ValueError(f"explanation method {method!r}: expected one of {', '.join(METHODS)}")
        if method == "integrated_gradients" and (gradient is None or steps < 1):
            raise ValueError("integrated_gradients needs the gradient graph and its steps")
        self.gradient, self.alphas = gradient, ((np.arange(max(steps, 0)) + 0.5) / max(steps, 1))[:, None, None]
        self.fields = tuple(fields)
        self.window, self.method, self.baseline_rul = window, method, float(baseline_rul)
        self.n = len(self.fields)
        bounds = np.linspace(0, window, min(max(spans, 0), window) + 1).round().astype(int)
        self.span_rows = [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]
        # Fixed permutations: the same window always gets the same explanation.
        rng = np.random.default_rng(seed)
        perms = [rng.permutation(self.n) for _ in range(max(pairs, 1))]
        self.permutations = [p for q in perms for p in (q, q[::-1])]

    @property
    def windows_per_explanation(self) -> int:
        """Model inputs one explanation adds to the model call (besides the window itself)."""
        if self.method == "shapley":
            return len(self.permutations) * max(self.n - 1, 0) + len(self.span_rows)
        if self.method == "integrated_gradients":
            return 0  # the gradient graph's own call carries the explanation
        return self.n + len(self.span_rows)

    def perturbed(self, x: np.ndarray) -> np.ndarray:
        """The windows to run for explaining ``x`` (window, n_channels):
        (windows_per_explanation, window, n_channels) float32."""
        x = np.asarray(x, np.float32)
        out = []
        if self.method == "integrated_gradients":
            return np.zeros((0, self.window, self.n), np.float32)
        if self.method == "shapley":
            for perm in self.permutations:
                on = np.zeros(self.n, np.float32)
                for c in perm[:-1]:  # the chain's ends are the baseline and x itself
                    on[c] = 1.0
                    out.append(x * on)
        else:
            chans = np.repeat(x[None], self.n, axis=0)
            chans[np.arange(self.n), :, np.arange(self.n)] = 0.0
            out.extend(chans)
        for a, b in self.span_rows:
            w = x.copy()
            w[a:b] = 0.0
            out.append(w)
        return np.stack(out) if out else np.zeros((0, self.window, self.n), np.float32)

    def batch(self, x: np.ndarray) -> np.ndarray:
        """The one model input that explains every window of ``x`` (batch, window, n_channels): the
        windows themselves, then each one's perturbations."""
        return np.concatenate([np.asarray(x, np.float32), *(self.perturbed(w) for w in x)])

    def attribute(self, model_rul: float, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs ``y`` on :meth:`perturbed` windows -> (per-channel, per-span) contributions."""
        y = np.asarray(y, np.float64)
        k = len(self.span_rows)
        head, tail = y[: len(y) - k], y[len(y) - k:]
        if self.method == "shapley":
            phi = np.zeros(self.n)
            per = max(self.n - 1, 0)
            for i, perm in enumerate(self.permutations):
                chain = np.concatenate([[self.baseline_rul], head[i * per:(i + 1) * per], [model_rul]])
                phi[perm] += np.diff(chain)
            phi /= len(self.permutations)
        else:
            phi = model_rul - head
        return phi, model_rul - tail

    def read(self, x: np.ndarray, y: np.ndarray, last_cycles: Sequence[int | None] | None = None
             ) -> list[Explanation]:
        """The model's outputs ``y`` on :meth:`batch` ``(x)`` -> one explanation per window of ``x``;
        ``last_cycles``: each window's last reading's cycle, when known."""
        y = np.asarray(y, np.float64)
        per = self.windows_per_explanation
        rul, rest = y[: len(x)], y[len(x):]
        cycles = list(last_cycles) if last_cycles is not None else [None] * len(x)
        if self.method == "integrated_gradients":
            return [self._explanation(float(rul[i]), None, cycles[i], x[i]) for i in range(len(x))]
        return [self._explanation(float(rul[i]), rest[i * per:(i + 1) * per], cycles[i]) for i in range(len(x))]

    def explain_windows(self, model: ModelCall, x: np.ndarray, last_cycles: Sequence[int | None] | None = None
                        ) -> list[Explanation]:
        """Explain every window of ``x`` with ONE model call."""
        return self.read(x, model(self.batch(x)), last_cycles)

    def integrated(self, x: np.ndarray) -> np.ndarray:
        """Integrated-gradients attributions of window ``x`` (window, n_channels), cycles per cell:
        one call of the gradient graph on the path's midpoints."""
        assert self.gradient is not None
        x = np.asarray(x, np.float64)
        _, grad = self.gradient((self.alphas * x[None]).astype(np.float32))
        attr: np.ndarray = grad.mean(0) * x
        return attr

    def _explanation(self, model_rul: float, y: np.ndarray | None, last_cycle: int | None,
                     x: np.ndarray | None = None) -> Explanation:
        if x is not None:
            cells = self.integrated(x)
            phi, span = cells.sum(0), np.array([cells[a:b].sum() for a, b in self.span_rows])
        else:
            assert y is not None
            phi, span = self.attribute(model_rul, y)
        order = np.argsort(-np.abs(phi), kind="stable")
        contributions = tuple(ChannelContribution(self.fields[i], CHANNELS.get(self.fields[i], Channel(
            self.fields[i], "")), float(phi[i])) for i in order)
        spans = []
        for (a, b), v in zip(self.span_rows, span, strict=True):
            ago_from, ago_to = self.window - 1 - a, self.window - b
            spans.append(SpanContribution(ago_from, ago_to, float(v),
                                          None if last_cycle is None else last_cycle - ago_from,
                                          None if last_cycle is None else last_cycle - ago_to))
        interaction = model_rul - self.baseline_rul - float(phi.sum())
        return Explanation(self.method, model_rul, self.baseline_rul, contributions, interaction, tuple(spans))


def baseline_rul(model: ModelCall, window: int, n_channels: int) -> float:
    """The network's RUL (cycles) on the baseline window: every channel at its training mean."""
    return float(model(np.zeros((1, window, n_channels), np.float32))[0])


def global_importance(fields: Sequence[str], model: ModelCall, x: np.ndarray, source: str,
                      batch: int = 64) -> dict[str, Any]:
    """Each channel's mean |occlusion contribution| (cycles) over the windows ``x``, largest first,
    with its mean signed contribution: the model-wide view of what per-prediction explanations say.
    ``source`` says which windows (e.g. "412 windows of 20 held-out engines"). Plain JSON, for the manifest."""
    x = np.asarray(x, np.float32)
    window, n = x.shape[1], x.shape[2]
    explainer = Explainer(fields, window, baseline_rul(model, window, n), "occlusion", spans=0)
    phi = np.zeros((len(x), n))
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        y = np.asarray(model(explainer.batch(chunk)), np.float64)
        per = explainer.windows_per_explanation
        for j in range(len(chunk)):
            phi[start + j] = explainer.attribute(float(y[j]), y[len(chunk) + j * per:len(chunk) + (j + 1) * per])[0]
    mean_abs, mean = np.abs(phi).mean(0), phi.mean(0)
    channels = []
    for i in np.argsort(-mean_abs, kind="stable"):
        c = CHANNELS.get(explainer.fields[i], Channel(explainer.fields[i], ""))
        channels.append({"field": explainer.fields[i], "name": c.name, "unit": c.unit,
                         "mean_abs_contribution": round(float(mean_abs[i]), 3),
                         "mean_contribution": round(float(mean[i]), 3)})
    return {"method": "occlusion", "baseline": BASELINE, "windows": len(x), "source": source,
            "baseline_rul": round(explainer.baseline_rul, 3), "channels": channels}
