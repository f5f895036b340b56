"""Gradient graphs (``explain.onnx``) for a bundle, with any number of integrated-gradients steps —
also for bundles written before the graph existed (such as /work/bundles/main-FD001-s0).

    .venv/bin/python benchmarks/gradient_graphs.py BUNDLE --steps 1 2 4 --out DIR

The served network is rebuilt in torch from ``model.onnx``'s weights (the registered network named in
bundle.json, :func:`prognos.training.export.network_from_onnx`), checked to answer as ``model.onnx``
does on random windows, and its gradient graph exported and checked against torch autograd
(:func:`prognos.training.export.gradient_graph`). Needs the ``train`` extra (torch, onnxscript). The
bundle itself is not changed (its files are checksummed): the graphs are written to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from prognos.serving.predictor import Predictor
from prognos.serving.runtime import GradientRuntime


def gradient_runtimes(p: Predictor, steps: list[int], out: Path) -> dict[int, GradientRuntime]:
    """``steps`` -> a one-thread session of the bundle's gradient graph with that many path points."""
    import torch

    from prognos.training.export import gradient_graph, network_from_onnx

    m = p.bundle.manifest.model
    if m.get("served") == "ensemble" and "+" in str(m["name"]):
        raise SystemExit(f"{p.version}: a mixed ensemble ({m['name']}) cannot be rebuilt from its weights here")
    net = network_from_onnx(p.bundle.model_path, str(m["name"]), m.get("params") or {}, p.pipeline.n_features,
                            p.window, p.pipeline.rul_cap, 1 if m.get("served") == "student" else int(m["members"]))
    x = np.random.default_rng(0).normal(size=(64, p.window, p.pipeline.n_features)).astype(np.float32)
    with torch.no_grad():
        gap = float(np.abs(net(torch.from_numpy(x)).numpy() - p.predict_windows(x)).max())
    if gap > 1e-3:
        raise SystemExit(f"{p.version}: the network rebuilt from model.onnx differs by {gap:.2g} cycles")
    print(f"{p.version}: {m['name']} rebuilt from model.onnx's weights, max |difference| {gap:.2g} cycles")
    out.mkdir(parents=True, exist_ok=True)
    runtimes = {}
    for k in steps:
        path = out / f"explain-{k}.onnx"
        info = gradient_graph(net, p.window, p.pipeline.n_features, x, path, steps=k)
        if not info["built"]:
            raise SystemExit(f"{p.version}: no gradient graph: {info['reason']}")
        print(f"  {k} steps: {path} (vs torch autograd: RUL {info['max_abs_diff_rul']:.2g} cycles, "
              f"gradient {info['max_abs_diff_gradient']:.2g})")
        runtimes[k] = GradientRuntime(path, threads=1)
    return runtimes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--steps", type=int, nargs="+", default=[2])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    gradient_runtimes(Predictor.from_path(args.bundle), args.steps, args.out)


if __name__ == "__main__":
    main()
