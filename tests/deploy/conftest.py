"""Helpers of the deployment tests: the repository's deploy/ directory and the CI switches.

Fast checks (unit file, alert rules, compose file, workflow, Dockerfile, metric names against a live
server and a real Prometheus) run in every ``make test``. Slow ones run when ``CI=true`` or
``PROGNOS_DEPLOY_TESTS=1`` (Terraform init/validate/test) and skip with the reason otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def slow_deploy_checks_enabled() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("PROGNOS_DEPLOY_TESTS") == "1"


requires_deploy_switch = pytest.mark.skipif(
    not slow_deploy_checks_enabled(), reason="slow deployment check: runs with CI=true or PROGNOS_DEPLOY_TESTS=1")

TOKEN = "deploy-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def live_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``prognos serve`` (the public command line) with the fleet app, retention on, on free ports."""
    work = tmp_path_factory.mktemp("deploy-serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    env.update(PROGNOS_DATA_DIR=str(work / "data"), PROGNOS_ADMIN_TOKEN=TOKEN, PROGNOS_RETENTION_DAYS="30",
               PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="2")
    prognos = str(Path(sys.executable).parent / "prognos")
    log = work / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([prognos, "serve", "--bundle", str(tiny_bundle), "--http-port", str(port),
                                 "--grpc-port", str(free_port())], cwd=work, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", port, work / "data", proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"prognos serve exited {proc.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready in 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
