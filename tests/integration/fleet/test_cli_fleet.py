"""The fleet commands through the real entry point (``prognos.cli.main``) on a SQLite file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from prognos.cli import main
from prognos.config import get_settings
from prognos.data.synthetic import synthetic_fleet
from prognos.fleet import open_store
from tests.helpers import cmapss_text


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROGNOS_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PROGNOS_DATABASE_URL", raising=False)
    monkeypatch.delenv("PROGNOS_BUNDLE", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["prognos", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


def test_keys_create_list_revoke(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("keys", "create", "--role", "viewer", "--name", "wall screen")
    assert code == 0 and "not shown again" in err
    secret = out.strip()
    assert secret.startswith("pk_")
    code, out, _ = run("keys", "list")
    assert code == 0 and "wall screen" in out and secret[:10] in out and secret not in out and "active" in out
    assert run("keys", "revoke", "1")[0] == 0
    assert "revoked" in run("keys", "list")[1]
    code, _, err = run("keys", "revoke", "42")
    assert code == 5 and err.strip() == "error: API key 42 not found"
    code, _, err = run("keys", "create", "--role", "root")
    assert code == 3 and err.count("\n") == 1 and "role" in err


def test_ingest_file_is_idempotent_and_scored_with_a_bundle(run, tmp_path: Path, tiny_bundle: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "train_FD001.txt"
    fleet = synthetic_fleet(2, seed=4)
    path.write_text(cmapss_text(fleet))
    code, out, _ = run("ingest", str(path), "--engine-prefix", "plant-", "--bundle", str(tiny_bundle))
    assert code == 0 and f"{len(fleet)} readings stored" in out and "2 predictions" in out
    code, out, _ = run("ingest", str(path), "--engine-prefix", "plant-")
    assert code == 0 and f"0 readings stored, {len(fleet)} duplicates" in out
    store = open_store(get_settings())
    engines = store.list_engines().items
    assert [e["engine_id"] for e in engines] == ["plant-1", "plant-2"] and all(e["rul"] is not None for e in engines)
    store.db.dispose()
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 0.5\n")
    code, _, err = run("ingest", str(bad))
    assert code == 3 and "bad.txt, line 1" in err and "Traceback" not in err


def test_retention_and_db_upgrade(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("db", "upgrade")
    assert code == 0 and "is up to date" in out
    code, _, err = run("retention", "run")
    assert code == 2 and "--days" in err
    code, out, _ = run("retention", "run", "--days", "30")
    assert code == 0 and "deleted 0 readings and 0 predictions" in out


def test_bad_database_url_is_one_line(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROGNOS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/x?connect_timeout=2")
    code, _, err = run("keys", "list")
    assert code == 2 and err.startswith("error: database") and err.count("\n") == 1
