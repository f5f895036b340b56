"""Model cost, in process, side by side in one run: one-window latency and batch throughput on ONE
ONNX Runtime thread (the serving default).

    .venv/bin/python benchmarks/model_cost.py [BUNDLE ...] [--references] [--features 14]

Each BUNDLE is measured through the predictor (what ``prognos serve`` loads). ``--references`` adds,
in the same run, networks built in process with the same shapes (needs the ``train`` extra):

* ``reference lstm 2x64, window 30`` — the planning documents' reference network;
* ``tcn+lstm x10, window 30`` — the previous default served model (the 10-member ensemble);
* ``default student`` / ``default teacher`` — the networks a default ``prognos train`` distils and
  serves (``student``, ``window`` of TrainConfig) and the ensemble it distils from.

Weights are random: the cost of these networks does not depend on weights or input values (zeros
are fed). Rounds alternate between models (``--rounds``) so load from other processes on a shared
machine hits all of them alike; the table shows the median over rounds. "Windows per CPU-second"
divides by the process's CPU time instead of wall time: the cost on one core, which stays meaningful
when other processes hold the cores (the wall-clock rate is then what is left over).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prognos.serving.predictor import Predictor
from prognos.serving.runtime import OnnxRuntime


def _reference_models(out: Path, n_features: int) -> dict[str, Path]:
    from prognos.training.config import TrainConfig
    from prognos.training.export import export_onnx
    from prognos.training.networks import Ensemble, build_network
    from prognos.training.trainer import architectures

    cfg = TrainConfig.model_validate({})
    teacher = architectures(cfg.model) * cfg.folds
    specs: dict[str, tuple[list[str], int]] = {
        f"default student: {cfg.student} x1, window {cfg.window}": ([cfg.student], cfg.window),
        f"default teacher: {cfg.model} x{len(teacher)}, window {cfg.window}": (teacher, cfg.window),
        "previous default: tcn+lstm x10, window 30": (["tcn", "lstm"] * 5, 30),
        "reference lstm 2x64, window 30": (["lstm"], 30),
    }
    paths = {}
    for i, (name, (archs, w)) in enumerate(specs.items()):
        params = cfg.student_params if len(archs) == 1 and name.startswith("default student") else {}
        model = Ensemble([build_network(a, n_features, w, **params) for a in archs], 125.0).eval()
        path = out / f"ref{i}.onnx"
        export_onnx(model, w, n_features, path)
        paths[name] = path
    return paths


def _measure(run: Callable[[np.ndarray], np.ndarray], window: int, n_features: int,
             seconds: float) -> tuple[float, float, float, float]:
    one = np.zeros((1, window, n_features), np.float32)
    for _ in range(30):
        run(one)
    ts = []
    for _ in range(300):
        t = time.perf_counter()
        run(one)
        ts.append(time.perf_counter() - t)
    batch = np.zeros((256, window, n_features), np.float32)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        run(batch)
        n += len(batch)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return float(np.percentile(ts, 50)) * 1e3, float(np.percentile(ts, 99)) * 1e3, n / wall, n / max(cpu, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*")
    ap.add_argument("--references", action="store_true", help="add the reference LSTM and ensembles (torch)")
    ap.add_argument("--features", type=int, default=14, help="features of the reference networks (FD001: 14)")
    ap.add_argument("--seconds", type=float, default=1.0, help="time per batch measurement per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    models: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int, int, str]] = {}
    for path in args.bundles:
        p = Predictor.from_path(Path(path))
        m = p.bundle.manifest.model
        size = p.bundle.model_path.stat().st_size
        what = f"{m.get('served', 'ensemble')} {m['name']} x{m.get('members', 1)}, window {p.window}"
        models[f"{p.version} ({what})"] = (p.predict_windows, p.window, p.pipeline.n_features, f"{size / 1e3:,.0f} kB")
    with tempfile.TemporaryDirectory() as tmp:
        if args.references:
            for name, path in _reference_models(Path(tmp), args.features).items():
                rt = OnnxRuntime(path, threads=1)
                w = int(name.rsplit(" ", 1)[1])
                models[name] = (rt.run, w, args.features, f"{path.stat().st_size / 1e3:,.0f} kB")
        if not models:
            ap.error("give at least one bundle or --references")
        results: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in models}
        for _ in range(args.rounds):
            for name, (run, w, f, _size) in models.items():
                results[name].append(_measure(run, w, f, args.seconds))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"one ONNX Runtime thread; median of {args.rounds} interleaved rounds; load average {load} "
          f"on {os.cpu_count()} cores")
    print("| model | ONNX size | model call, 1 window, p50 / p99 (ms) | batch 256, windows/s | "
          "batch 256, windows per CPU-second |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        p50, p99, rate, per_cpu = (float(np.median([r[i] for r in rs])) for i in range(4))
        print(f"| {name} | {models[name][3]} | {p50:.3f} / {p99:.3f} | {rate:,.0f} | {per_cpu:,.0f} |")


if __name__ == "__main__":
    main()
