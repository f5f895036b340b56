"""Migration 0003: drift alerts that older versions hung on the pseudo-engine ``model`` become
alerts on their model version, and the pseudo-engine leaves the fleet table."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from prognos.fleet.database import connect, upgrade
from prognos.fleet.store import FleetStore


def test_pseudo_engine_alerts_move_to_their_model_version(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'fleet.db'}")
    upgrade(db, "0002")
    now = "2026-11-20 10:00:00.000000"
    with db.engine.begin() as c:
        c.execute(text("INSERT INTO engines (id, tags, model_family, created_at, n_readings, status) "
                       "VALUES ('model', :t, 'model', :now, 0, 'unknown'), ('e1', '{}', NULL, :now, 0, 'unknown')"),
                  {"t": json.dumps({"kind": "model"}), "now": now})
        for engine, details in (("model", {"model_version": "v7"}), ("e1", {"rul": 3.0})):
            c.execute(text("INSERT INTO alerts (engine_id, kind, severity, status, message, details, opened_at, "
                           "updated_at) VALUES (:e, :k, 'warning', 'open', 'm', :d, :now, :now)"),
                      {"e": engine, "k": "drift" if engine == "model" else "rul_low", "d": json.dumps(details),
                       "now": now})
    upgrade(db)
    store = FleetStore(db)
    assert [e["engine_id"] for e in store.list_engines().items] == ["e1"]
    model = store.list_alerts(target_kind="model").items
    assert [(a["kind"], a["model_version"], a["engine_id"]) for a in model] == [("drift", "v7", None)]
    engine = store.list_alerts(target_kind="engine").items
    assert [(a["kind"], a["engine_id"], a["model_version"]) for a in engine] == [("rul_low", "e1", None)]
    db.dispose()
