"""``prognos serve`` in a subprocess on free 127.0.0.1 ports, driven over real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """One ``prognos serve`` process. ``env`` adds PROGNOS_* settings; ``args`` CLI options."""

    def __init__(self, workdir: Path, bundle: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.http_port, self.grpc_port = free_port(), free_port()
        self.workdir = workdir
        self.log_path = workdir / "serve.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
        base.update(PROGNOS_ADMIN_TOKEN=ADMIN_TOKEN, PROGNOS_DATA_DIR=str(workdir / "data"),
                    PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="5",
                    # these tests drive load from one address; the rate limits are tested in tests/reliability
                    PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S="0", PROGNOS_RATE_LIMIT_PER_S="0")
        base.update(env or {})
        cmd = [sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(bundle),
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port), *args]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started_at = time.monotonic()
        # cwd: a fresh directory, so no stray .env changes the settings under test.
        self.proc = subprocess.Popen(cmd, cwd=workdir, env=base, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 30.0, path: str = "/ready", port: int | None = None) -> float:
        """Poll until ``path`` answers 200; returns the seconds from process start."""
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{port or self.http_port}{path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prognos serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return time.monotonic() - self.started_at
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{url} not 200 within {timeout_s} s:\n{self.log()}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout_s: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def serve_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(bundle: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              wait: bool = True, **kw: Any) -> ServeProcess:
        p = ServeProcess(tmp_path_factory.mktemp("serve"), bundle, env, args)
        started.append(p)
        if wait:
            p.wait_ready(**kw)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture(scope="module")
def rest_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server shared by the read-only contract tests of a module."""
    p = ServeProcess(tmp_path_factory.mktemp("serve"), tiny_bundle)
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()
