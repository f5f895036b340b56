"""End-to-end fixtures: the real server (``prognos serve`` in a subprocess on free ports, SQLite in a
temporary data dir, the tiny bundle), keys made by ``prognos keys create`` with the same
environment, and Debian's Chromium driven by Playwright (never a downloaded browser).

Screenshots go to ``$PROGNOS_E2E_SCREENSHOTS`` if set, else to a temporary folder whose path is
printed (run with ``-s`` to see it)."""

from __future__ import annotations

import os
import shutil
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

CHROMIUM = os.environ.get("PROGNOS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


@dataclass(frozen=True)
class LiveServer:
    url: str
    env: dict[str, str]
    data_dir: Path
    log: Path
    operator_key: str
    viewer_key: str

    def api(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.operator_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prognos.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _create_key(env: dict[str, str], role: str) -> str:
    r = _cli(env, "keys", "create", "--role", role, "--name", f"e2e-{role}")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture(scope="module")
def live_server(chromium_path: str, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    # Depends on chromium_path so a machine without Chromium skips before training or starting anything.
    # One server per test module; a module may add settings in SERVER_ENV (e.g. drift after a few samples).
    data_dir = tmp_path_factory.mktemp("e2e-data")
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    env.update(PROGNOS_DATA_DIR=str(data_dir), PROGNOS_HTTP_PORT=str(http_port), PROGNOS_GRPC_PORT=str(grpc_port),
               PROGNOS_LOG_LEVEL="WARNING", PROGNOS_HOST="127.0.0.1",
               # A margin for the seconds-trained tiny model: engines replayed to failure must open a
               # critical alert even if its intervals are wide (the rule itself is tested elsewhere).
               PROGNOS_ALERT_CRITICAL_RUL="25", PROGNOS_ALERT_WARNING_RUL="50",
               **getattr(request.module, "SERVER_ENV", {}))
    # Keys first: the CLI and the server share the database through the same environment.
    operator_key, viewer_key = _create_key(env, "operator"), _create_key(env, "viewer")
    log = data_dir / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(tiny_bundle)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, START_TIMEOUT_S, "the server to become ready")
        yield LiveServer(url, env, data_dir, log, operator_key, viewer_key)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("PROGNOS_E2E_SCREENSHOTS")
    path = Path(given) if given else tmp_path_factory.mktemp("screens")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots -> {path}")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()
