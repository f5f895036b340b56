"""Durability: the real server (``prognos serve``, SQLite, the tiny bundle) is killed with SIGKILL
while clients stream ingests; after a restart every reading it acknowledged (2xx) is there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.fleet.conftest import free_port
from tests.integration.fleet.readings import engine_readings

PROGNOS = [sys.executable, "-m", "prognos.cli"]


@dataclass
class Env:
    env: dict[str, str]
    url: str
    grpc_target: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*PROGNOS, *args], env=self.env, capture_output=True, text=True, timeout=60)

    def serve(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*PROGNOS, "serve"], env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"prognos serve exited with {proc.returncode}"
            assert time.monotonic() < deadline, "prognos serve did not become ready"
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            time.sleep(0.05)


@pytest.fixture
def env(tmp_path: Path, tiny_bundle: Path) -> Iterator[Env]:
    port, grpc_port = free_port(), free_port()
    e = dict(os.environ, PROGNOS_DATA_DIR=str(tmp_path / "state"), PROGNOS_BUNDLE=str(tiny_bundle),
             PROGNOS_HTTP_PORT=str(port), PROGNOS_GRPC_PORT=str(grpc_port), PROGNOS_LOG_LEVEL="WARNING",
             PROGNOS_RATE_LIMIT_PER_S="0")
    e.pop("PROGNOS_DATABASE_URL", None)
    yield Env(e, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")


def test_every_acknowledged_reading_survives_kill_9(env: Env) -> None:
    created = env.cli("keys", "create", "--role", "operator", "--name", "stream")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]  # `keys create` and `serve` share one database
    server = env.serve()

    acked: dict[str, list[int]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    sent = {f"k{i}": engine_readings(seed=20 + i) for i in range(4)}

    def stream(engine: str) -> None:
        rows = sent[engine]
        with httpx.Client(base_url=env.url, headers={"Authorization": f"Bearer {key}"}, timeout=5) as c:
            for i in range(0, len(rows), 3):
                if stop.is_set():
                    return
                try:
                    r = c.post(f"/api/v1/engines/{engine}/readings", json=rows[i:i + 3])
                except httpx.HTTPError:
                    return  # the server died under us: this batch was never acknowledged
                if r.status_code in (200, 201):
                    with lock:
                        acked.setdefault(engine, []).extend(row["cycle"] for row in rows[i:i + 3])

    threads = [threading.Thread(target=stream, args=(e,)) for e in sent]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(map(len, acked.values())) < 150:  # well into the stream, with requests in flight
        assert time.monotonic() < deadline, "ingestion too slow"
        time.sleep(0.005)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    total = sum(map(len, acked.values()))
    assert total >= 150

    server = env.serve()
    try:
        with httpx.Client(base_url=env.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            for engine, cycles in acked.items():
                stored = c.get(f"/api/v1/engines/{engine}/readings", params={"limit": 5000}).json()["items"]
                by_cycle = {r["cycle"]: r for r in stored}
                missing = sorted(set(cycles) - set(by_cycle))
                assert not missing, f"{engine}: acknowledged cycles lost after kill -9: {missing[:10]}"
                original = {row["cycle"]: row for row in sent[engine]}
                for cyc in cycles:  # and stored exactly as sent
                    assert {k: by_cycle[cyc][k] for k in original[cyc]} == original[cyc]
            # the same server stores readings streamed over gRPC, through the same ingestion code
            from prognos.serving.grpc.client import RulClient

            rows = engine_readings(seed=50)[:12]
            counts = RulClient(env.grpc_target, api_key=key).ingest([{"engine_id": "grpc-1", "sensor_data": rows[:8]},
                                                        {"engine_id": "grpc-1", "sensor_data": rows[4:]}])
            assert (counts.accepted, counts.duplicates) == (12, 4)
            engine = c.get("/api/v1/engines/grpc-1").json()
            assert engine["n_readings"] == 12 and engine["latest_prediction"]["cycle"] == 12
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
