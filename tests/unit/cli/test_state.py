"""Where the CLI keeps and finds its state, and what a command that only reads says when the state is
not there: the nearest ``.prognos/`` (the demo's, in the checkout) wins over ``~/.prognos``; a read
command never creates an empty database in the wrong place; a missing bundle fails before serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from prognos.config import default_data_dir, get_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROGNOS_DATA_DIR", raising=False)
    monkeypatch.delenv("PROGNOS_DATABASE_URL", raising=False)
    return tmp_path / "home"


def test_the_nearest_dot_prognos_wins(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".prognos").mkdir(parents=True)
    (checkout / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(checkout / "src" / "deep")
    assert default_data_dir() == checkout / ".prognos"
    assert get_settings().data_dir == checkout / ".prognos"
    monkeypatch.setenv("PROGNOS_DATA_DIR", str(tmp_path / "elsewhere"))
    assert get_settings().data_dir == tmp_path / "elsewhere"  # the variable wins
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROGNOS_DATA_DIR")
    assert default_data_dir() == home / ".prognos"  # outside any checkout


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    return subprocess.run([sys.executable, "-m", "prognos.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**clean, **env}, timeout=60)


def test_a_read_command_names_the_missing_database_and_creates_none(home: Path, tmp_path: Path) -> None:
    r = _cli(tmp_path, "plan", "--horizon", "30", HOME=str(home))
    assert r.returncode == 5 and r.stdout == ""
    line = r.stderr.strip()
    assert line.startswith(f"error: no fleet database at {home / '.prognos' / 'prognos.db'}"), line
    assert "PROGNOS_DATA_DIR" in line and len(r.stderr.strip().splitlines()) == 1
    assert not (home / ".prognos").exists()
    for args in (("keys", "list"), ("failure", "e1", "--cycle", "3")):
        assert _cli(tmp_path, *args, HOME=str(home)).returncode == 5
    assert not (home / ".prognos").exists()


def test_a_read_command_on_an_empty_database_says_which_and_that_it_is_empty(home: Path, tmp_path: Path) -> None:
    state = tmp_path / "checkout" / ".prognos"
    state.mkdir(parents=True)
    assert _cli(state.parent, "db", "upgrade", HOME=str(home)).returncode == 0
    r = _cli(state.parent, "plan", "--format", "json", HOME=str(home))
    assert r.returncode == 0 and r.stdout.lstrip().startswith("{")  # stdout stays JSON
    assert f"the fleet database {state / 'prognos.db'} has no engines yet" in r.stderr
    r = _cli(state.parent, "keys", "list", HOME=str(home))
    assert r.returncode == 0 and f"no API keys in {state / 'prognos.db'}" in r.stdout


def test_serve_refuses_a_missing_bundle_before_binding_or_logging(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _cli(tmp_path, "serve", "--bundle", "no_such_bundle", "--http-port", str(port), "--grpc-port", "0",
             PROGNOS_DATA_DIR=str(tmp_path / "state"))
    assert r.returncode == 4
    assert r.stderr.strip() == "error: no_such_bundle: no such bundle directory" and r.stdout == ""
    assert not (tmp_path / "state").exists()  # nothing opened, created or logged
