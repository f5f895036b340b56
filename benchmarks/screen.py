"""Screen training configurations by engine-level cross-validation, every cycle of held-out lives.

    .venv/bin/python benchmarks/screen.py --dataset FD001 --seed 0 NAME:key=value,key=value ...

For each candidate (``NAME:`` then TrainConfig overrides; ``base`` alone is the default) this fits
the feature pipeline on the subset's training engines, trains the teacher ensemble cross-fitted by
engine (``folds`` members per network; default here ``folds=3 model=tcn`` to keep a screen cheap)
and scores the out-of-fold predictions at **every cycle** of every training engine (truth capped at
the config's ``rul_cap``): RMSE over all windows, in the last 50 cycles of life, and its worst age
bin. No test set and no RUL file is read: nothing selected here can carry a number from one. Prints
one table row per candidate, and one JSON line each to ``--jsonl`` if given. Out-of-fold here means
each window is predicted by the member that did not train on its engine (early-stopped on that
engine's fold, so slightly optimistic, equally for all).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="FD001")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/cmapss"))
    ap.add_argument("--jsonl", type=Path)
    ap.add_argument("--save", type=Path, help="directory for NAME.npz: out-of-fold predictions per window")
    ap.add_argument("candidates", nargs="+", help="NAME:key=value,key=value (TrainConfig overrides)")
    args = ap.parse_args()
    from prognos.correction import AGE_BINS
    from prognos.data.cmapss import load_subset
    from prognos.features.pipeline import FeaturePipeline
    from prognos.training.config import load_train_config
    from prognos.training.trainer import train_ensemble

    subset = load_subset(args.data_dir, args.dataset)
    print("| candidate | overrides | OOF RMSE every cycle | last 50 cycles RMSE | bias last 50 (pred - true) "
          "| worst age-bin RMSE | minutes |")
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
        d = res.oof_pred - w.y
        late = w.y < 50
        all_rmse = float(np.sqrt(np.mean(d ** 2)))
        rmse = float(np.sqrt(np.mean(d[late] ** 2)))
        bias = float(np.mean(d[late]))
        age_bin = np.searchsorted(np.asarray(AGE_BINS), w.cycles, side="right") - 1
        worst_age = max(float(np.sqrt(np.mean(d[age_bin == j] ** 2))) for j in np.unique(age_bin))
        minutes = (time.perf_counter() - t0) / 60
        print(f"| {name} | {over} | {all_rmse:.2f} | {rmse:.2f} | {bias:+.2f} | {worst_age:.2f} | {minutes:.1f} |",
              flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.savez(args.save / f"{name}-{args.dataset}-s{args.seed}.npz", oof=res.oof_pred, y=w.y,
                     engine_ids=w.engine_ids, cycles=w.cycles)
        if args.jsonl:
            with args.jsonl.open("a") as f:
                f.write(json.dumps({"name": name, "dataset": args.dataset, "seed": args.seed, "overrides": over,
                                    "oof_rmse": all_rmse, "late_life_rmse": rmse, "late_life_bias": bias,
                                    "worst_age_bin_rmse": worst_age, "minutes": minutes,
                                    "epochs": res.member_epochs}) + "\n")


if __name__ == "__main__":
    main()
