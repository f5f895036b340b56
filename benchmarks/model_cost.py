"""Model cost of bundles, in process: one-window latency and batch throughput (one ONNX thread).

    .venv/bin/python benchmarks/model_cost.py BUNDLE [BUNDLE ...]

Prints one line per bundle. Inputs are zeros: the cost of these networks does not depend on values.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prognos.serving.predictor import Predictor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per batch measurement")
    args = ap.parse_args()
    print("| bundle | model call, 1 window, p50 / p99 (ms) | batch 256, windows/s |")
    print("|---|---|---|")
    for path in args.bundles:
        p = Predictor.from_path(path)
        one = np.zeros((1, p.window, p.pipeline.n_features), np.float32)
        for _ in range(50):
            p.predict_windows(one)
        ts = []
        for _ in range(500):
            t = time.perf_counter()
            p.predict_windows(one)
            ts.append(time.perf_counter() - t)
        batch = np.zeros((256, p.window, p.pipeline.n_features), np.float32)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds:
            p.predict_windows(batch)
            n += len(batch)
        rate = n / (time.perf_counter() - t0)
        print(f"| {p.version} | {np.percentile(ts, 50) * 1e3:.3f} / {np.percentile(ts, 99) * 1e3:.3f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
