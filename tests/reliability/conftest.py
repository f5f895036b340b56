"""Fixtures of the reliability suite: a real ``prognos serve`` process (REST + gRPC + the fleet app,
the tiny bundle) on free 127.0.0.1 ports, probed from outside as an attacker or a chaos engineer
would; a PostgreSQL 15 server that a test may stop and start again.

The server runs in its own process on purpose: latency and memory measured from the test process
would otherwise include the test's own threads and allocations.

Loop-stall check (issue 19): no request may hold the server's event loop for more than 50 ms. The
server measures its own loop lag (``prognos_event_loop_lag_seconds`` in ``/metrics``: how late a
10 ms timer ran, capped by the loop thread's CPU time meanwhile, so a noisy 2-core machine
preempting the process is not mistaken for a stall). Every reliability test fails if a server
running during it recorded a sample above 50 ms: the autouse :func:`loop_stall_check` compares the
count before and after the test for servers that outlive it (module fixtures), and :func:`serve`
checks servers a test starts and stops itself when their block ends.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest_pg import PG_BIN, PostgresServer, postgres_unavailable_reason, start_postgres

ADMIN = "reliability-admin-token"

# The default run (make test, CI) keeps this directory within a few minutes on 2 cores; the heavy
# cases (a 40 MB upload, kill -9 on both databases, a full disk, 30 reloads) run with
# PROGNOS_RELIABILITY_FULL=1, and PROGNOS_FUZZ_BUDGET multiplies the fuzzing budgets.
FULL = os.environ.get("PROGNOS_RELIABILITY_FULL") == "1"
heavy = pytest.mark.skipif(not FULL, reason="heavy reliability case: set PROGNOS_RELIABILITY_FULL=1")


STALL_S = 0.05  # the loop-lag threshold (s), a bucket bound of prognos_event_loop_lag_seconds
_LIVE: list[Served] = []  # servers running now (for the loop-stall check)
SUMMARY: list[str] = []  # lines the reliability tests report at the end of every run (CI's log shows them)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY:
        terminalreporter.write_line(line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    grpc_target: str
    log: Path
    scheme: str = "http"
    stall_baseline: int = 0  # loop stalls recorded by the time the server was ready (start-up)

    def client(self, key: str | None = ADMIN, timeout: float = 30, **kw: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, **kw)  # type: ignore[arg-type]

    def key(self, role: str) -> str:
        with self.client() as c:
            r = c.post("/api/v1/keys", json={"role": role, "name": f"reliability {role}"})
            assert r.status_code == 201, r.text
            return str(r.json()["key"])

    def rss_peak_kb(self) -> int:
        """The server's peak resident set (VmHWM, KiB) since it started."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def stalls(self) -> int | None:
        """Event-loop lag samples above :data:`STALL_S` since start (None: the server does not answer)."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=10, verify=False).text
        except httpx.HTTPError:
            return None
        within = re.search(r'prognos_event_loop_lag_seconds_bucket\{le="0\.05"\} (\S+)', text)
        total = re.search(r"prognos_event_loop_lag_seconds_count (\S+)", text)
        if within is None or total is None:
            return None
        return int(float(total.group(1)) - float(within.group(1)))

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def serve_env(workdir: Path, bundle: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROGNOS_", "AWS_"))}
    env.update(PROGNOS_DATA_DIR=str(workdir / "state"), PROGNOS_BUNDLE=str(bundle), PROGNOS_ADMIN_TOKEN=ADMIN,
               PROGNOS_LOG_LEVEL="WARNING", PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="3")
    env.update({f"PROGNOS_{k.upper()}": v for k, v in settings.items()})
    return env


@contextmanager
def serve(workdir: Path, bundle: Path, *, ready: bool = True, **settings: str) -> Iterator[Served]:
    """``prognos serve`` with ``settings`` (as PROGNOS_* variables) until the block ends."""
    port, grpc_port = free_port(), free_port()
    env = serve_env(workdir, bundle, http_port=str(port), grpc_port=str(grpc_port), **settings)
    scheme = "https" if "tls_cert_file" in settings else "http"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"serve-{port}.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve"], env=env, cwd=workdir, stdout=fh,
                                stderr=subprocess.STDOUT)
    served = Served(proc, f"{scheme}://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", log, scheme)
    try:
        deadline = time.monotonic() + 90
        path = "/ready" if ready else "/health"
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"prognos serve exited {proc.returncode}:\n{served.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"prognos serve not ready within 90 s:\n{served.output()}")
            try:
                if httpx.get(f"{served.url}{path}", timeout=1, verify=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        served.stall_baseline = served.stalls() or 0
        _LIVE.append(served)
        yield served
        _assert_no_stall(served, served.stall_baseline)
    finally:
        if served in _LIVE:
            _LIVE.remove(served)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _assert_no_stall(served: Served, before: int) -> None:
    after = served.stalls()
    if after is not None and after > before:
        raise AssertionError(f"the server's event loop stalled > {STALL_S * 1000:.0f} ms {after - before} time(s) "
                             f"(prognos_event_loop_lag_seconds)")


@pytest.fixture(autouse=True)
def loop_stall_check() -> Iterator[None]:
    """Fails the test when a server that outlives it (a module fixture) stalled its loop meanwhile."""
    before = {id(s): (s, s.stalls()) for s in _LIVE}
    yield
    for served, count in before.values():
        if served in _LIVE and count is not None:
            _assert_no_stall(served, count)


def long_readings(bundle: Path, n: int) -> list[dict[str, object]]:
    """``n`` valid readings with cycles 1..n: a synthetic engine's first readings, repeated (the
    synthetic engines are shorter than a long ingestion run)."""
    from tests.unit.serving.factory import readings

    base = readings(bundle, 120)
    return [{**base[i % len(base)], "cycle": i + 1} for i in range(n)]


@dataclass
class RestartablePostgres:
    """A PostgreSQL server a test may stop (``-m fast``) and start again on the same port and data."""

    server: PostgresServer

    def _pg_ctl(self, *args: str) -> None:
        data = self.server.root / "data"
        opts = (f"-p {self.server.port} -k {self.server.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=100 -c shared_buffers=64MB")
        cmd = [*self.server._as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-t", "60", *args]
        if args[0] == "start":
            cmd += ["-o", opts, "-l", str(self.server.root / "server.log")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=90, cwd=self.server.root)
        assert out.returncode == 0, f"pg_ctl {args[0]} failed: {out.stderr}"

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "fast")

    def start(self) -> None:
        self._pg_ctl("start")


@pytest.fixture(scope="session")
def postgres() -> Iterator[RestartablePostgres]:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_postgres()
    try:
        yield RestartablePostgres(server)
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: RestartablePostgres) -> str:
    return postgres.server.create_database()
