"""A real ``prognos serve`` subprocess on free 127.0.0.1 ports, and polling helpers, for the
drift, canary, serve-by-alias and lifecycle-flow tests, and a load loop that records every answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.unit.serving.factory import readings

ADMIN_TOKEN = "lifecycle-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], object], what: str, timeout_s: float = 60.0, every_s: float = 0.05) -> None:
    """Poll ``cond`` until it is truthy; fail naming ``what`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


def clean_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a prognos process: none of the caller's PROGNOS_/AWS_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROGNOS_", "AWS_"))}
    env.update(PROGNOS_DATA_DIR=str(workdir / "data"), PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="5",
               PROGNOS_ADMIN_TOKEN=ADMIN_TOKEN, PROGNOS_LOG_JSON="false",
               # these tests drive predict and ingest load as fast as the machine allows; the per-address and
               # per-key limits are tested in tests/reliability and tests/integration/fleet
               PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S="100000", PROGNOS_ANONYMOUS_RATE_LIMIT_BURST="100000",
               PROGNOS_RATE_LIMIT_PER_S="0")
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, cwd: Path | None = None, timeout_s: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prognos.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


@contextmanager
def serve(workdir: Path, env: dict[str, str], *args: str) -> Iterator[Server]:
    """``prognos serve ARGS`` until the block ends (SIGTERM, then wait)."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve", "--http-port", str(port),
                                 "--grpc-port", str(free_port()), *args], cwd=workdir, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_for(server.ready, "the server to be ready", timeout_s=90)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Load:
    """Clients posting predictions back to back; every (status, model_version) is recorded."""

    url: str
    bundle: Path
    min_readings: int = 10  # each request sends min_readings..min_readings+39 readings
    seen: list[tuple[int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                n = self.min_readings + (i * 7 + k) % 40
                body = {"engine_id": f"load{k}", "sensor_data": readings(self.bundle, n, engine=k)}
                try:
                    r = client.post("/api/v1/predict", json=body)
                    self.seen.append((r.status_code, r.json().get("model_version", r.text)))
                except httpx.HTTPError as exc:  # a refused or reset connection is a failed request too
                    self.seen.append((0, repr(exc)))
                i += 1

    def latest(self) -> str:
        return self.seen[-1][1] if self.seen else ""

    def more(self, n: int) -> None:
        mark = len(self.seen)
        wait_for(lambda: len(self.seen) >= mark + n, f"{n} more responses")
