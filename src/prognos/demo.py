"""``prognos demo``: the whole product on embedded defaults, in one command.

Trains a quick model (or reuses the one trained before) into ``<data dir>/demo/bundle``, starts
``prognos serve`` on it (SQLite in the data dir), creates an operator API key, replays a fleet of
engines cycle by cycle, and prints the dashboard URL and the key. With the C-MAPSS files it replays
FD001 test engines (the model never saw them); without, a synthetic fleet, and it says so.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from prognos.bundle import Bundle, read_bundle
from prognos.config import Settings
from prognos.errors import BundleError, ConfigError, PrognosError

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    engines: int = 30
    speed: float = 2.0  # cycles per second per engine
    duration_s: float | None = None  # stop after this long (None: until Ctrl-C)
    retrain: bool = False


def _free_port(host: str, preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ConfigError(f"no free port on {host}")


def _quick_bundle(settings: Settings, out: Path, retrain: bool, say: Callable[[str], None]) -> Bundle:
    if not retrain:
        try:
            b = read_bundle(out)
            say(f"reusing the model trained before: {b.version} ({out})")
            return b
        except BundleError:
            pass
    try:
        from prognos.training.config import TrainConfig
        from prognos.training.run import train_bundle_from_readings
    except ImportError as exc:
        raise PrognosError(f"the demo trains a model first and needs the 'train' extra: {exc}") from None
    cfg = TrainConfig(model="tcn", folds=3, epochs=10, patience=4, holdout=0.0)
    if settings.cmapss_dir is not None:
        from prognos.data.cmapss import load_subset

        say(f"training a quick FD001 model on {settings.cmapss_dir} (3 members, ≤10 epochs; `prognos train` "
            "trains the full one) …")
        train = load_subset(settings.cmapss_dir, "FD001", with_test=False).train
        return train_bundle_from_readings(train, "FD001", out, cfg, has_test_truth=True, log=say)
    from prognos.data.synthetic import synthetic_fleet

    say("C-MAPSS data not found (set PROGNOS_CMAPSS_DIR): training on a SYNTHETIC fleet instead …")
    return train_bundle_from_readings(synthetic_fleet(60, seed=0), "SYNTHETIC", out, cfg, log=say)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PrognosError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise PrognosError(f"the server was not ready within {timeout_s:.0f} s")


def run_demo(settings: Settings, opts: DemoOptions, say: Callable[[str], None] = print) -> None:
    from prognos.fleet import open_store
    from prognos.fleet.keys import KeyStore
    from prognos.fleet.simulate import load_replay_fleet, simulate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bundle = _quick_bundle(settings, settings.data_dir / "demo" / "bundle", opts.retrain, say)
    key = KeyStore(open_store(settings)).create("operator", "demo").secret
    host = settings.host
    http_port = _free_port(host, settings.http_port)
    grpc_port = _free_port(host, settings.grpc_port)
    env = {**os.environ, "PROGNOS_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["PROGNOS_DATABASE_URL"] = settings.database_url
    cmd = [sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(bundle.path), "--host", host,
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    log_path = settings.data_dir / "demo" / "server.log"
    url = f"http://{host}:{http_port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    timer: threading.Timer | None = None
    try:
        _wait_ready(url, proc)
        if settings.cmapss_dir is not None and bundle.manifest.dataset == "FD001":
            fleet = load_replay_fleet(dataset="FD001", split="test", data_dir=settings.cmapss_dir,
                                      engines=opts.engines, synthetic=None, seed=0, prefix=None)
            source = f"{fleet.n_engines} FD001 test engines (unseen in training)"
        else:
            fleet = load_replay_fleet(dataset="FD001", split="test", data_dir=None, engines=None,
                                      synthetic=opts.engines, seed=1, prefix=None)
            source = f"{fleet.n_engines} SYNTHETIC engines"
        say("")
        say(f"  dashboard   {url}/")
        say(f"  API key     {key}   (operator; sign in with it)")
        say(f"  REST        {url}/docs      gRPC {host}:{grpc_port}      server log {log_path}")
        say(f"  replaying   {source} at {opts.speed:g} cycles/s per engine")
        say("  Ctrl-C stops the demo" + (f" (or it stops after {opts.duration_s:g} s)" if opts.duration_s else ""))
        say("")
        if opts.duration_s:
            timer = threading.Timer(opts.duration_s, stop.set)
            timer.daemon = True
            timer.start()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        summary = simulate(url, key, fleet, speed=opts.speed, stop=stop)
        say(f"replay finished: {summary.readings_sent} readings sent in {summary.elapsed_s:.0f} s")
        if not stop.is_set():
            say(f"the server keeps running at {url}/ — Ctrl-C to stop")
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=settings.shutdown_grace_s + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
        say("demo stopped")
