"""Screen training configurations by engine-level cross-validation at test-like cuts.

    .venv/bin/python benchmarks/screen.py --dataset FD001 --seed 0 NAME:key=value,key=value ...

For each candidate (``NAME:`` then TrainConfig overrides; ``base`` alone is the default) this fits
the feature pipeline on the subset's training engines, trains the teacher ensemble cross-fitted by
engine (``folds`` members per network; default here ``folds=3 model=tcn`` to keep a screen cheap)
and scores the out-of-fold predictions where an official test engine would be cut: for every engine,
the window ending at ``life - r`` for each ``r`` in ``RUL_FD001.txt`` that leaves ≥ 31 cycles of
history (so the RUL at the cut follows the official test set's distribution; truth capped at 125).
The test set itself is never read. Prints one table row per candidate, and one JSON line each to
``--jsonl`` if given. Out-of-fold here means each window is predicted by the member that did not
train on its engine (early-stopped on that engine's fold, so slightly optimistic, equally for all).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _parse(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = spec.partition(":")
    over: dict[str, Any] = {}
    for kv in filter(None, rest.split(",")):
        k, v = kv.split("=", 1)
        try:
            over[k] = json.loads(v)
        except json.JSONDecodeError:
            over[k] = v
    return name, over


def test_like_mask(engine_ids: np.ndarray, cycles: np.ndarray, reference: np.ndarray, min_history: int = 31
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of windows at test-like cuts (with repeats: one per admissible reference RUL) and the
    uncapped true RUL at each."""
    idx, rul = [], []
    for e in np.unique(engine_ids):
        rows = np.flatnonzero(engine_ids == e)
        life = int(cycles[rows].max())
        for r in reference:
            at = life - int(r)
            if at >= min_history:
                idx.append(rows[np.searchsorted(cycles[rows], at)])
                rul.append(float(r))
    return np.array(idx), np.array(rul)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="FD001")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/cmapss"))
    ap.add_argument("--jsonl", type=Path)
    ap.add_argument("--save", type=Path, help="directory for NAME.npz: out-of-fold predictions per window")
    ap.add_argument("candidates", nargs="+", help="NAME:key=value,key=value (TrainConfig overrides)")
    args = ap.parse_args()
    from prognos.data.cmapss import load_subset
    from prognos.evaluation import reference_rul
    from prognos.features.pipeline import FeaturePipeline
    from prognos.metrics import phm08_score
    from prognos.training.config import load_train_config
    from prognos.training.trainer import train_ensemble

    subset = load_subset(args.data_dir, args.dataset)
    reference = reference_rul(args.data_dir)
    if reference is None:
        raise SystemExit(f"{args.data_dir}/RUL_FD001.txt is needed for the test-like cut distribution")
    print("| candidate | overrides | OOF RMSE all windows | test-like RMSE | test-like score per 100 engines "
          "| mean error (pred - true) | minutes |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.candidates:
        name, over = _parse(spec)
        over = {"folds": 3, "model": "tcn", "serve": "ensemble", **over}
        cfg = load_train_config(None, seed=args.seed, **over)
        t0 = time.perf_counter()
        pipeline = FeaturePipeline(window=cfg.window, rul_cap=cfg.rul_cap, smoothing=cfg.smoothing,
                                   min_trend=cfg.min_trend, n_regimes=cfg.n_regimes, seed=cfg.seed).fit(subset.train)
        w = pipeline.training_windows(subset.train)
        res = train_ensemble(w, pipeline.n_features, cfg, on_epoch=None)
        idx, true = test_like_mask(w.engine_ids, w.cycles, reference)
        capped = np.minimum(true, 125.0)
        pred = res.oof_pred[idx]
        rmse = float(np.sqrt(np.mean((pred - capped) ** 2)))
        score = phm08_score(pred, capped) / len(idx) * 100
        all_rmse = float(np.sqrt(np.mean((res.oof_pred - w.y) ** 2)))
        bias = float(np.mean(pred - capped))
        minutes = (time.perf_counter() - t0) / 60
        print(f"| {name} | {over} | {all_rmse:.2f} | {rmse:.2f} | {score:.0f} | {bias:+.2f} | {minutes:.1f} |",
              flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez(args.save / f"{name}-{args.dataset}-s{args.seed}.npz", oof=res.oof_pred, y=w.y,
                     engine_ids=w.engine_ids, cycles=w.cycles)
        if args.jsonl:
            with args.jsonl.open("a") as f:
                f.write(json.dumps({"name": name, "dataset": args.dataset, "seed": args.seed, "overrides": over,
                                    "oof_rmse": all_rmse, "test_like_rmse": rmse, "test_like_score_100": score,
                                    "bias": bias, "minutes": minutes, "epochs": res.member_epochs}) + "\n")


if __name__ == "__main__":
    main()
