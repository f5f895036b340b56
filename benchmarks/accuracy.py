"""Accuracy of the served student and its teacher ensemble from ONE training run, side by side.

    .venv/bin/python benchmarks/accuracy.py --dataset FD001 --seed 0 --out /tmp/acc [--config c.json] [key=value ...]

Trains like ``prognos train`` (teacher ensemble, then the distilled student; ``key=value`` overrides
any TrainConfig field, e.g. ``window=30 model=tcn+lstm``), writes the student bundle to
``OUT/DATASET-sSEED`` and the teacher's to ``OUT/DATASET-sSEED-teacher``, evaluates both like
``prognos evaluate`` and prints one JSON line per bundle with both protocols side by side:

* ``last_cycle`` — FD001: the official test set's last cycles; otherwise the held-out engines, each
  cut at a seeded uniformly random cycle;
* ``every_cycle`` — every cycle of the same engines from the latest readings the fleet sends
  (FD001: the official test trajectories, truth R + L − t; otherwise the held-out engines' whole
  lives), with the late-life and status figures of ``prognos evaluate``.

A bundle with an age correction is evaluated a second time without it (``without_age_correction``:
the ablation, same network). Minutes are wall-clock on whatever the machine is doing; the log says how
many threads.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (training's worker processes)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def every_cycle_summary(ec: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of ``metrics.json``'s ``every_cycle`` (see prognos.evaluation)."""
    st = ec["status"]
    return {"rmse": ec["rmse"], "bias": ec["bias"], "coverage": ec["coverage"],
            "below_lower_bound_last_50": ec["late_life"]["below_lower_bound"],
            "dangerous_misses_last_50": ec["late_life"]["dangerous_misses"],
            "status_changes": {"truth": st["truth_changes"], "predictor": st["predictor"]["changes"],
                               "fleet": st["fleet"]["changes"]},
            "reversals_on_falling_prediction": {"predictor": st["predictor"]["reversals_on_falling_prediction"],
                                                "fleet": st["fleet"]["reversals_on_falling_prediction"]},
            "rmse_by_age": {r["age"]: r["rmse"] for r in ec["by_age"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="FD001")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/cmapss"))
    ap.add_argument("--config", type=Path)
    ap.add_argument("--evaluate-only", action="store_true", help="evaluate the bundles OUT already holds")
    ap.add_argument("overrides", nargs="*", help="TrainConfig field=value (JSON values)")
    args = ap.parse_args()
    from prognos.correction import AgeCorrection
    from prognos.evaluation import evaluate_bundle
    from prognos.serving.predictor import Predictor
    from prognos.training.config import load_train_config
    from prognos.training.run import train_bundle

    over: dict[str, Any] = {}
    for kv in args.overrides:
        k, v = kv.split("=", 1)
        try:
            over[k] = json.loads(v)
        except json.JSONDecodeError:
            over[k] = v
    cfg = load_train_config(args.config, seed=args.seed, **over)
    name = f"{args.dataset}-s{args.seed}"
    student_dir, teacher_dir = args.out / name, args.out / f"{name}-teacher"
    t0, c0 = time.perf_counter(), _cpu_seconds()
    if not args.evaluate_only:
        train_bundle(args.data_dir, args.dataset, student_dir, cfg, teacher_out=teacher_dir,
                     log=lambda m: print(m, flush=True))
    minutes = (time.perf_counter() - t0) / 60
    cpu_minutes = (_cpu_seconds() - c0) / 60  # the machine-independent cost
    for kind, path in (("served", student_dir), ("teacher", teacher_dir)):
        if not path.exists():
            continue
        p = Predictor.from_path(path)
        if kind == "served":  # "student", or "ensemble" when the run serves its teacher (serve=ensemble)
            kind = str(p.bundle.manifest.model.get("served", "student"))
        rep = evaluate_bundle(p, args.data_dir, args.dataset, args.out / f"report-{path.name}")
        m = rep.metrics
        row: dict[str, Any] = {"last_cycle": {k: m.get(k) for k in ("rmse", "score", "coverage", "mean_interval_width",
                                                                    "n_engines")},
                               "every_cycle": every_cycle_summary(m["every_cycle"])}
        if not p.correction.is_identity:
            p.correction = AgeCorrection()  # the same network and intervals, the raw network output
            m0 = evaluate_bundle(p, args.data_dir, args.dataset, args.out / f"report-{path.name}-uncorrected").metrics
            row["without_age_correction"] = {"last_cycle_rmse": m0.get("rmse"),
                                             "every_cycle": every_cycle_summary(m0["every_cycle"])}
        print(json.dumps({"dataset": args.dataset, "seed": args.seed, "served": kind, **row,
                          "train_minutes": None if args.evaluate_only else round(minutes, 1),
                          "train_cpu_minutes": None if args.evaluate_only else round(cpu_minutes, 1),
                          "threads": cfg.threads,
                          "config": {k: v for k, v in cfg.model_dump().items() if k in over or k == "window"},
                          "bundle": str(path)}), flush=True)


if __name__ == "__main__":
    main()
