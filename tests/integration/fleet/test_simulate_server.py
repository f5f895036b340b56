"""``prognos simulate`` against the real server: ``prognos serve`` in a subprocess (free ports,
SQLite in a temporary data dir, the tiny bundle), keys from ``prognos keys create``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from prognos.data.synthetic import synthetic_fleet
from prognos.fleet.simulate import SimulationError, simulate
from tests.integration.fleet.conftest import free_port

PROGNOS = [sys.executable, "-m", "prognos.cli"]


@dataclass(frozen=True)
class Server:
    url: str
    env: dict[str, str]
    operator: str
    viewer: str

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PROGNOS, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def engines(self) -> dict[str, dict[str, object]]:
        r = httpx.get(f"{self.url}/api/v1/engines", params={"limit": 5000},
                      headers={"Authorization": f"Bearer {self.operator}"}, timeout=10)
        r.raise_for_status()
        return {e["engine_id"]: e for e in r.json()["items"]}


def _readings(server: Server, engine_id: str) -> int:
    row = server.engines().get(engine_id)
    return 0 if row is None else int(str(row["n_readings"]))


def _key(env: dict[str, str], role: str) -> str:
    r = subprocess.run([*PROGNOS, "keys", "create", "--role", role], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    env.update(PROGNOS_DATA_DIR=str(tmp_path_factory.mktemp("simulate-state")), PROGNOS_BUNDLE=str(tiny_bundle),
               PROGNOS_HTTP_PORT=str(port), PROGNOS_GRPC_PORT=str(free_port()), PROGNOS_LOG_LEVEL="WARNING")
    operator, viewer = _key(env, "operator"), _key(env, "viewer")
    proc = subprocess.Popen([*PROGNOS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, f"prognos serve exited with {proc.returncode}"
            assert time.monotonic() < deadline, "prognos serve did not become ready"
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        yield Server(url, env, operator, viewer)
    finally:
        proc.terminate()
        proc.wait(20)


def test_cli_replays_a_synthetic_fleet_into_the_server(server: Server) -> None:
    r = server.cli("simulate", "--url", server.url, "--api-key", server.operator, "--synthetic", "4", "--seed", "3",
                   "--speed", "0")
    assert r.returncode == 0, r.stderr
    fleet = synthetic_fleet(4, seed=3, id_prefix="SYN-")
    assert f"{len(fleet)}/{len(fleet)} sent, {len(fleet)} accepted, 0 duplicates" in r.stdout
    stored = server.engines()
    for e in fleet.engines():
        row = stored[e.engine_id]
        assert row["last_cycle"] == int(e.cycles[-1]) and row["n_readings"] == len(e)
        assert row["rul"] is not None and row["predicted_cycle"] == int(e.cycles[-1])

    # Replaying the same fleet again is harmless: the server recognises every reading.
    again = simulate(server.url, server.operator, fleet, speed=0)
    assert again.ok and again.accepted == 0 and again.duplicates == len(fleet), again.describe()


def test_paced_replay_keeps_each_engine_current(server: Server) -> None:
    fleet = synthetic_fleet(3, seed=5, id_prefix="PACE-")
    summary = simulate(server.url, server.operator, fleet, speed=10.0, max_cycles=12)
    assert summary.ok, summary.describe()
    assert summary.elapsed_s >= 1.0  # 12 cycles at 10 cycles/s: the last is due 1.1 s after the first
    stored = server.engines()
    assert all(stored[f"PACE-{i}"]["last_cycle"] == 12 for i in (1, 2, 3))


def test_viewer_key_is_refused_with_one_line(server: Server) -> None:
    before = set(server.engines())
    r = server.cli("simulate", "--url", server.url, "--api-key", server.viewer, "--synthetic", "2", "--speed", "0",
                   "--prefix", "VIEW-")
    assert r.returncode == SimulationError.exit_code
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: HTTP 403") and "Traceback" not in r.stderr
    assert set(server.engines()) == before


def test_ctrl_c_stops_cleanly_and_the_summary_matches_the_server(server: Server) -> None:
    proc = subprocess.Popen([*PROGNOS, "simulate", "--url", server.url, "--api-key", server.operator, "--synthetic",
                             "3", "--prefix", "CTRL-", "--speed", "5"], env={**server.env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ids = ("CTRL-1", "CTRL-2", "CTRL-3")
    # Stop once the replay is visibly under way (every engine has readings on the server).
    deadline = time.monotonic() + 30
    while not all(_readings(server, e) >= 3 for e in ids):
        assert proc.poll() is None and time.monotonic() < deadline, "replay did not start"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "replay stopped early" in out and "Traceback" not in err
    sent = int(re.search(r"readings: (\d+)/\d+ sent", out).group(1))  # type: ignore[union-attr]
    # Requests in flight finished before the summary: it counts exactly what the server stored.
    assert sum(_readings(server, e) for e in ids) == sent
