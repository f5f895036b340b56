"""``prognos serve`` processes of each role on free 127.0.0.1 ports, for the scale-out tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.scale.brokers import free_port

ADMIN_TOKEN = "scale-admin-token"


def env_for(workdir: Path, **extra: str) -> dict[str, str]:
    """A prognos process environment: none of the caller's PROGNOS_/AWS_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROGNOS_", "AWS_"))}
    env.update(PROGNOS_DATA_DIR=str(workdir / "data"), PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="3",
               PROGNOS_ADMIN_TOKEN=ADMIN_TOKEN, PROGNOS_LOG_JSON="false", PROGNOS_LOG_LEVEL="WARNING",
               PROGNOS_RATE_LIMIT_PER_S="0", PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S="0")
    env.update(extra)
    return env


@dataclass
class Proc:
    """One ``prognos serve`` process; :meth:`start` again after :meth:`kill` reuses its ports."""

    name: str
    workdir: Path
    args: list[str]
    env: dict[str, str]
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def env_dir(self) -> Path:
        return Path(self.env["PROGNOS_DATA_DIR"])

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Proc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prognos.cli", "serve", "--http-port", str(self.http_port), "--grpc-port",
                 str(self.grpc_port), *self.args], cwd=self.workdir, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise AssertionError(f"{self.name} exited {code}:\n{self.log.read_text()[-4000:]}")
        try:
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout_s: float = 90) -> Proc:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout_s:g} s:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
