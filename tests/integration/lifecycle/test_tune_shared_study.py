"""Two `prognos tune` processes ("machines") work on one study in a real PostgreSQL 15 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import write_cmapss_dir
from tests.integration.conftest_pg import PostgresServer, postgres_unavailable_reason, start_postgres


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("psycopg")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


def test_two_processes_share_one_study(postgres: PostgresServer, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    pytest.importorskip("torch")
    import optuna

    url = postgres.create_database("optuna_shared")
    data = write_cmapss_dir(tmp_path / "cmapss", n_train=8, n_test=4)
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"model": "cnn", "folds": 2, "epochs": 20, "threads": 1}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    procs = []
    for machine in ("a", "b"):
        cmd = [sys.executable, "-m", "prognos.cli", "tune", "--dataset", "FD001", "--data-dir", str(data),
               "--trials", "1", "--epochs", "1", "--config", str(base), "--storage", url, "--study", "shared",
               "--seed", str(ord(machine)), "--out", str(tmp_path / f"best-{machine}.json")]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env={**env, "PROGNOS_DATA_DIR": str(tmp_path / machine)},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    storage = optuna.storages.RDBStorage(url)
    try:
        trials = optuna.load_study(study_name="shared", storage=storage).trials
    finally:
        storage.engine.dispose()
    assert len(trials) == 2
    assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    for machine in ("a", "b"):
        written = json.loads((tmp_path / f"best-{machine}.json").read_text())
        assert written["tuning"]["study"] == "shared" and "postgres@127.0.0.1" in written["tuning"]["storage"]
    assert not (tmp_path / "a" / "optuna.db").exists()  # the given URL, not the SQLite default
