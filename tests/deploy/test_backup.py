"""The SQLite online backup of docs/deploy.md, run against a serving process: the copy taken while
the server runs opens as a complete database with every committed reading."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from tests.deploy.conftest import TOKEN, LiveServer

# The command of docs/deploy.md ("Backup and restore"), with this venv's python.
BACKUP = ("import sqlite3, sys; s = sqlite3.connect(sys.argv[1]); d = sqlite3.connect(sys.argv[2]); "
          "s.backup(d); d.close()")


def test_online_backup_of_the_fleet_database(live_server: LiveServer, tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    assert BACKUP in doc, "the documented command changed: keep this test in step"
    from prognos.data.synthetic import synthetic_fleet

    engine = next(iter(synthetic_fleet(1, seed=11).engines()))
    fields = ("setting_1", "setting_2", "setting_3", *(f"s{i}" for i in range(1, 22)))
    readings = [{"cycle": int(c), **dict(zip(fields, map(float, row), strict=True))}
                for c, row in zip(engine.cycles[:25], engine.values[:25], strict=True)]
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        r = client.post("/api/v1/engines/backup-1/readings", json=readings)
        assert r.status_code in (200, 201), r.text
    source = live_server.data_dir / "prognos.db"
    copy = tmp_path / "backup.db"
    out = subprocess.run([sys.executable, "-c", BACKUP, str(source), str(copy)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(copy) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        n = db.execute("select count(*) from readings where engine_id = 'backup-1'").fetchone()[0]
    assert n == 25
