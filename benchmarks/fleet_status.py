"""The fleet's STORED status and rul_low alerts when every test engine is ingested cycle by cycle.

    PYTHONPATH=src .venv/bin/python benchmarks/fleet_status.py --bundle B [--dataset FD001] [--engines N]

Each official test engine's readings go into a real fleet store (SQLite in a temporary folder) one
cycle at a time; each cycle's prediction is what the fleet's predictor answers for the latest
``history_readings`` readings (computed in one batched model call, as ``prognos evaluate`` does),
and :meth:`FleetStore.save_scores` settles the engine's stored status (hysteresis,
``status_hold_readings``) and its ``rul_low`` alert (resolve debounce by readings; the time debounce
is off: a replay has no wall clock) exactly as an ingest does. Prints status changes (stored, and
per prediction) against the truth's (``R + L − t`` judged with the same thresholds), reversals to a
better stored status on a falling prediction, and alerts opened / resolved with their peak severity.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--dataset", default="FD001")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/cmapss"))
    ap.add_argument("--engines", type=int, default=0, help="only the first N test engines (0: all)")
    args = ap.parse_args()
    import numpy as np

    from prognos.config import get_settings
    from prognos.data.cmapss import load_subset
    from prognos.evaluation import predict_every_cycle
    from prognos.fleet.alerts import AlertRules, Debounce
    from prognos.fleet.database import connect, upgrade
    from prognos.fleet.records import EngineScore, PredictionRecord, ReadingBatch
    from prognos.fleet.store import FleetStore
    from prognos.serving.predictor import Predictor
    from prognos.status import status_rank

    settings = get_settings()
    rules = AlertRules(settings)
    debounce = Debounce(settings.alert_resolve_readings, 0.0)
    predictor = Predictor.from_path(args.bundle)
    subset = load_subset(args.data_dir, args.dataset)
    assert subset.test is not None and subset.rul is not None, "needs the official test set and its RUL file"
    engines = list(subset.test.engines())
    truth_end = subset.rul
    if args.engines:
        engines, truth_end = engines[: args.engines], truth_end[: args.engines]
    traj = predict_every_cycle(predictor, engines, truth_end)
    cap = predictor.bundle.manifest.rul_cap
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as tmp:  # no fsync cost
        db = connect(f"sqlite:///{tmp}/fleet.db")
        upgrade(db)
        store = FleetStore(db)
        stored_changes = raw_changes = truth_changes = falling_better = 0
        i = 0
        for e in engines:
            prev_stored = prev_raw = prev_truth = None
            prev_pred = None
            for k in range(len(e)):
                store.add_readings([ReadingBatch(e.engine_id, e.cycles[k:k + 1], e.values[k:k + 1])])
                lo, rul, hi = float(traj.lower[i]), float(traj.pred[i]), float(traj.upper[i])
                raw = rules.status(lo)
                p = PredictionRecord(e.engine_id, int(e.cycles[k]), rul, lo, hi, predictor.confidence, raw,
                                     predictor.version)
                store.save_scores([EngineScore(e.engine_id, int(e.cycles[k]), p, {"rul_low": rules.rul(p)}, None,
                                               rules.policy, debounce)])
                stored = status_rank(store.get_engine(e.engine_id).status)
                truth = status_rank(rules.status(min(float(traj.true[i]), cap)))
                if prev_stored is not None:
                    stored_changes += stored != prev_stored
                    raw_changes += status_rank(raw) != prev_raw
                    truth_changes += truth != prev_truth
                    falling_better += stored < prev_stored and prev_pred is not None and rul < prev_pred
                prev_stored, prev_raw, prev_truth, prev_pred = stored, status_rank(raw), truth, rul
                i += 1
        alerts = store.list_alerts(kind="rul_low", limit=100000).items
        db.dispose()
    print(json.dumps({
        "bundle": str(args.bundle), "dataset": args.dataset, "engines": len(engines), "readings": i,
        "hold_readings": settings.status_hold_readings, "resolve_readings": settings.alert_resolve_readings,
        "status_changes": {"truth": truth_changes, "per_prediction": raw_changes, "stored": stored_changes,
                           "stored_vs_truth": round(stored_changes / max(truth_changes, 1), 2)},
        "stored_reversals_on_falling_prediction": int(falling_better),
        "rul_low_alerts": {"opened": len(alerts), "resolved": sum(a["status"] == "resolved" for a in alerts),
                           "peak_critical": sum(a["peak_severity"] == "critical" for a in alerts),
                           "resolved_with_peak_above_severity": sum(
                               a["status"] == "resolved" and a["peak_severity"] != a["severity"] for a in alerts),
                           "transitions_per_alert": float(np.mean([len(a["transitions"]) for a in alerts]))
                           if alerts else 0.0},
    }, indent=1))


if __name__ == "__main__":
    main()
