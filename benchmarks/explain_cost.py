"""Explanation cost vs the prediction's own model call, one engine, ONE ONNX Runtime thread, same run.

    .venv/bin/python benchmarks/explain_cost.py BUNDLE [BUNDLE ...] [--references] [--rounds 5] [--steps 1 2 4]

For each bundle (loaded as ``prognos serve`` loads it) and, with ``--references``, the networks of
benchmarks/model_cost.py built in process with random weights (needs the ``train`` extra), rounds
alternate between:

* ``model call`` — the prediction's own model call: one window through ONNX Runtime;
* ``explain: <method>`` — everything an explained prediction adds, for one engine: building the
  perturbed windows, the one batched model call (the window itself and its perturbations) and
  reading the attributions (:mod:`prognos.serving.explain`); for integrated gradients, the model
  call on the window and the one call of the gradient graph on the path's ``--steps`` points. A
  bundle's graph for each number of steps is built by benchmarks/gradient_graphs.py (torch: the
  ``train`` extra), also for bundles written before the graph existed.

The table shows the median over rounds of each p50 / p99 (ms) and the ratio of p50s. Windows are
random normal values (the cost of these networks does not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prognos.serving.explain import Explainer, Method, baseline_rul
from prognos.serving.predictor import Predictor
from prognos.serving.runtime import GradientRuntime, OnnxRuntime

Model = Callable[[np.ndarray], np.ndarray]
#: (label, method, spans, Shapley pairs): the candidates measured.
VARIANTS: tuple[tuple[str, Method, int, int], ...] = (
    ("occlusion, channels only", "occlusion", 0, 1),
    ("occlusion + 4 spans (served)", "occlusion", 4, 1),
    ("shapley, 1 antithetic pair + 4 spans", "shapley", 4, 1),
    ("shapley, 2 antithetic pairs + 4 spans", "shapley", 4, 2),
)


def _timed(run: Callable[[], object], n: int = 300) -> tuple[float, float]:
    for _ in range(20):
        run()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t)
    return float(np.percentile(ts, 50)) * 1e3, float(np.percentile(ts, 99)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*")
    ap.add_argument("--references", action="store_true", help="add model_cost.py's reference networks (torch)")
    ap.add_argument("--features", type=int, default=14, help="features of the reference networks (FD001: 14)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, nargs="*", default=[1, 2, 4],
                    help="integrated gradients with these path points (bundles only; none: skip)")
    args = ap.parse_args()
    models: dict[str, tuple[Model, list[str], int]] = {}
    graphs: dict[str, dict[int, GradientRuntime]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(args.bundles):
            p = Predictor.from_path(Path(path))
            m = p.bundle.manifest.model
            name = f"{p.version} ({m.get('served', 'ensemble')} {m['name']}, window {p.window})"
            models[name] = (p.predict_windows, list(p.pipeline.sensors_ or []), p.window)
            if args.steps:
                sys.path.insert(0, str(Path(__file__).parent))
                from gradient_graphs import gradient_runtimes

                graphs[name] = gradient_runtimes(p, args.steps, Path(tmp) / str(i))
        if args.references:
            sys.path.insert(0, str(Path(__file__).parent))
            from model_cost import _reference_models

            for name, path in _reference_models(Path(tmp), args.features).items():
                models[name] = (OnnxRuntime(path, threads=1).run, [f"c{i}" for i in range(args.features)],
                                int(name.rsplit(" ", 1)[1]))
        if not models:
            ap.error("give at least one bundle or --references")
        rng = np.random.default_rng(0)
        cases = {}
        for name, (model, fields, w) in models.items():
            x = rng.normal(size=(1, w, len(fields))).astype(np.float32)
            base = baseline_rul(model, w, len(fields))
            cases[name] = (model, x, [(label, Explainer(fields, w, base, method, spans, pairs))
                                      for label, method, spans, pairs in VARIANTS])
            cases[name][2].extend(
                (f"integrated gradients, {k} step{'s' * (k > 1)} + 4 spans", Explainer(
                    fields, w, base, "integrated_gradients", 4, gradient=g.gradient, steps=k))
                for k, g in graphs.get(name, {}).items())
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for name, (model, x, explainers) in cases.items():
                results.setdefault((name, "model call, 1 window"), []).append(_timed(lambda m=model, x=x: m(x)))
                for label, ex in explainers:
                    results.setdefault((name, label), []).append(
                        _timed(lambda m=model, x=x, ex=ex: ex.explain_windows(m, x)))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"one ONNX Runtime thread; one engine; median of {args.rounds} interleaved rounds of 300 calls; "
          f"load average {load} on {os.cpu_count()} cores")
    print("| model | what | windows in the model call | p50 / p99 (ms) | p50 vs the model call |")
    print("|---|---|---|---|---|")
    for name, (_model, _x, explainers) in cases.items():
        ref = float(np.median([r[0] for r in results[(name, "model call, 1 window")]]))
        sizes = {label: str(1 + ex.windows_per_explanation) if ex.gradient is None else f"1 + {len(ex.alphas)} "
                 "(gradient graph)" for label, ex in explainers}
        for what in ["model call, 1 window", *(label for label, _ in explainers)]:
            rs = results[(name, what)]
            p50, p99 = (float(np.median([r[i] for r in rs])) for i in range(2))
            print(f"| {name} | {what} | {sizes.get(what, 1)} | {p50:.3f} / {p99:.3f} | {p50 / ref:.1f}x |")


if __name__ == "__main__":
    main()
