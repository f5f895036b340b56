"""``prognos demo``: the whole product on one machine, in one command.

1. A quick model: reused from ``<data dir>/demo/bundle`` when there is one, trained otherwise
   (with a line per epoch and an estimate of the time left). A model trained on the SYNTHETIC
   fleet is replaced by a real FD001 model as soon as the C-MAPSS files are found, and the demo
   says so.
2. ``prognos serve`` on it with the fleet app (SQLite in the data dir), and one operator key for
   the demo, kept in ``<data dir>/demo/key`` and reused by every later run.
3. A living fleet (:func:`prognos.fleet.simulate.simulate_living`) until Ctrl-C: units that fail
   or whose data ends are replaced by new ones, so engines are at every stage of life.
4. A "what you have now" block: the dashboard and key, the model, where the state lives, how to
   put ``prognos`` on PATH and commands to try next (each works as printed: tested both on the
   synthetic sample data, named SYNTHETIC, and on C-MAPSS).

The data dir is the settings' (``PROGNOS_DATA_DIR``, else the nearest ``.prognos/``, else ``~/.prognos``);
``make demo`` sets it to ``.prognos/`` in the checkout, which ``prognos`` run inside the checkout finds. One
demo runs per data dir (``<data dir>/demo/demo.pid``, locked).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from prognos.bundle import Bundle, read_bundle
from prognos.config import Settings
from prognos.errors import BundleError, ConfigError, ConflictError, RemoteError

if TYPE_CHECKING:
    from prognos.training.trainer import EpochReport

__all__ = ["DemoOptions", "run_demo"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    engines: int = 30  # engine positions in the living fleet
    speed: float = 2.0  # cycles per second per engine
    duration_s: float | None = None  # stop after this long (None: until Ctrl-C)
    retrain: bool = False
    epochs: int = 10  # max epochs per ensemble member of the quick model
    members: int = 3  # ensemble members of the quick model


def _free_port(host: str, preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise ConfigError(f"no free port on {host}")


def _progress(say: Say, members: int, epochs: int, workers: int) -> Callable[[EpochReport], None]:
    """One line per epoch with an estimate of the time left (an upper bound: early stopping ends
    members sooner). ``workers`` members train at once, started in order."""
    started = time.monotonic()
    latest: dict[int, int] = {}  # member -> its last epoch reported

    def on_epoch(r: EpochReport) -> None:
        eta = ""
        if r.stage == "teacher":
            latest[r.member] = r.epoch
            finished = max(0, max(latest) - workers)  # members before these have ended
            done = finished * epochs + sum(e for m, e in latest.items() if m > finished)
            left = (time.monotonic() - started) * (members * epochs - done) / max(done, 1)
            eta = f"  ≤ {left / 60:.0f} min left" if left >= 90 else f"  ≤ {left:.0f} s left"
        say(f"  training: {r.line()}{eta}")

    return on_epoch


def _cmapss(settings: Settings) -> Path | None:
    """The C-MAPSS location if it is there (a configured but missing folder counts as no data)."""
    return settings.cmapss_dir if settings.cmapss_dir is not None and settings.cmapss_dir.exists() else None


def _quick_bundle(settings: Settings, out: Path, opts: DemoOptions, say: Say) -> Bundle:
    cmapss = _cmapss(settings)
    if not opts.retrain:
        try:
            b = read_bundle(out)
        except BundleError:
            b = None
        if b is not None and not (b.manifest.dataset == "SYNTHETIC" and cmapss is not None):
            say(f"reusing the model trained before: {b.version} ({out}; --retrain trains a new one)")
            return b
        if b is not None:
            say(f"the model in {out} was trained on SYNTHETIC data; C-MAPSS data found at {cmapss}: "
                "training a real FD001 model to replace it")
    try:
        from prognos.training.config import TrainConfig
        from prognos.training.run import train_bundle_from_readings
    except ImportError as exc:
        raise ConfigError(f"the demo trains a model first and needs the 'train' extra: {exc}") from None
    cfg = TrainConfig.model_validate({"model": "tcn", "folds": opts.members, "epochs": opts.epochs, "patience": 4,
                                      "holdout": 0.0, "serve": "ensemble"})
    on_epoch = _progress(say, opts.members, opts.epochs, cfg.threads)
    what = f"{opts.members} members, ≤{opts.epochs} epochs each; `prognos train` trains the full model"
    if cmapss is not None:
        from prognos.data.cmapss import load_subset

        say(f"training a quick FD001 model on {cmapss} ({what}) …")
        train = load_subset(cmapss, "FD001", with_test=False).train
        return train_bundle_from_readings(train, "FD001", out, cfg, has_test_truth=True, on_epoch=on_epoch, log=say)
    from prognos.data.synthetic import synthetic_fleet

    say(f"C-MAPSS data not found (set PROGNOS_CMAPSS_DIR): training on a SYNTHETIC fleet instead ({what}) …")
    return train_bundle_from_readings(synthetic_fleet(60, seed=0), "SYNTHETIC", out, cfg, on_epoch=on_epoch,
                                      log=say)


def _demo_key(settings: Settings, path: Path, say: Say) -> str:
    """The demo's operator key: the one saved by an earlier run while it is still valid, else a new one."""
    from prognos.fleet import open_store
    from prognos.fleet.keys import KeyStore

    keys = KeyStore(open_store(settings))
    if path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
        key = keys.lookup(secret)
        if key is not None and key.active:
            return secret
        say(f"the demo key in {path} is no longer valid: creating a new one")
    secret = keys.create("operator", "demo").secret
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o600)
    return secret


def _sample_data(folder: Path) -> Path:
    """Without C-MAPSS: a small generated subset in its layout, named SYNTHETIC (train, test cut before
    failure, their true RUL), to try the commands on."""
    from prognos.data.cmapss import SYNTHETIC
    from prognos.data.synthetic import write_subset

    if not (folder / f"RUL_{SYNTHETIC}.txt").is_file():
        write_subset(folder, SYNTHETIC, n_train=20, n_test=20, seed=500)
    return folder


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RemoteError(f"the server exited with code {proc.returncode} before it was ready: "
                              f"{_last_error(log_path)} (log: {log_path})")
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RemoteError(f"the server was not ready within {timeout_s:.0f} s (log: {log_path})")


def _last_error(log_path: Path) -> str:
    """The server's last ``error:`` line (the CLI prints one for every user mistake), else its last line."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error: ")]
    return (errors or lines or ["no output"])[-1].strip()


class _DemoLock:
    """One demo per data dir: ``<data dir>/demo/demo.pid`` holds an exclusive lock (released by the
    kernel if the demo dies) and the running demo's pid and dashboard URL, so a second demo can name it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the demo's lifetime)
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.seek(0)
            held = self.file.read().split()
            self.file.close()
            pid = held[0] if held else "?"
            where = f", dashboard {held[1]}" if len(held) > 1 else ""
            raise ConflictError(f"a demo is already running on {path.parent.parent} (pid {pid}{where}): stop it "
                                f"(Ctrl-C in its terminal, or kill {pid}) or give this one another "
                                "PROGNOS_DATA_DIR") from None
        self.note()

    def note(self, url: str = "") -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()} {url}\n")
        self.file.flush()

    def release(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.close()  # closing drops the lock


def _last_cycles(url: str, key: str) -> dict[str, int]:
    r = httpx.get(f"{url}/api/v1/engines", params={"limit": 5000}, headers={"Authorization": f"Bearer {key}"},
                  timeout=30)
    r.raise_for_status()
    return {e["engine_id"]: int(e["last_cycle"]) for e in r.json()["items"] if e.get("last_cycle") is not None}


def _what_you_have(say: Say, *, url: str, key: str, key_file: Path, bundle: Bundle, state: Path, data: Path,
                   dataset: str, source: str, opts: DemoOptions, log_path: Path) -> None:
    m = bundle.manifest
    rmse = m.validation_metrics.get("rmse")
    bin_dir = Path(sys.executable).parent
    on_path = shutil.which("prognos") == str(bin_dir / "prognos")
    exe = "prognos" if on_path else str(bin_dir / "prognos")
    # The checkout's .prognos/ is found from anywhere inside the checkout; elsewhere the variable says where.
    found = f" (found without it from inside {state.parent})" if state.name == ".prognos" else ""
    lines = [
        "",
        "what you have now",
        f"  dashboard   {url}/   (sign in with the key below)",
        f"  API key     {key}   operator; the same on every demo run (kept in {key_file})",
        f"  model       {bundle.path}   {m.dataset}, {m.model.get('members', '?')}-member {m.model.get('name', '')}"
        + (f", out-of-fold RMSE {rmse:.1f} cycles" if isinstance(rmse, int | float) else ""),
        f"  state       {state}   (model, fleet database, key, server log; delete it to start over)",
        f"  fleet       {opts.engines} engines at {opts.speed:g} cycles/s: {source}",
        f"  server log  {log_path}",
        "",
        "  prognos on your PATH: " + ("it is" if on_path else f'export PATH="{bin_dir}:$PATH"'),
        f"  the demo's state for prognos in other terminals: export PROGNOS_DATA_DIR={state}{found}",
        "  things to try next (in another terminal; each works as printed):",
        f"    {exe} predict --bundle {bundle.path} --input {data / f'test_{dataset}.txt'}",
        f"    {exe} evaluate --bundle {bundle.path} --dataset {dataset} --data-dir {data} "
        f"--report {state / 'demo' / 'report'}",
        f"    PROGNOS_DATA_DIR={state} {exe} plan --horizon 30",
        f'    curl -H "Authorization: Bearer {key}" "{url}/api/v1/plan?horizon=30"',
        "",
        "Ctrl-C stops the demo" + (f" (or it stops after {opts.duration_s:g} s)" if opts.duration_s else ""),
        "",
    ]
    for line in lines:
        say(line)


class _Quiet:
    """Unit replacements as they happen, but at most one line per ``every_s`` seconds (a fleet of
    30 replaces a unit every few seconds; the "what you have now" block must stay on screen)."""

    def __init__(self, say: Say, every_s: float = 10.0) -> None:
        self.say, self.every_s, self.last, self.held = say, every_s, -every_s, 0

    def __call__(self, event: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.held += 1
            return
        more = f" (and {self.held} more since the last line)" if self.held else ""
        self.say(f"  {event}{more}")
        self.last, self.held = now, 0


def run_demo(settings: Settings, opts: DemoOptions, say: Say = print) -> None:
    if opts.engines < 1 or opts.speed <= 0 or opts.epochs < 1 or opts.members < 2:
        raise ConfigError("demo: --engines and --epochs must be at least 1, --members at least 2, --speed above 0")
    state = settings.data_dir.resolve()
    (state / "demo").mkdir(parents=True, exist_ok=True)
    lock = _DemoLock(state / "demo" / "demo.pid")  # before anything else: a second demo names the first
    try:
        _run_locked(settings, opts, state, lock, say)
    finally:
        lock.release()


def _run_locked(settings: Settings, opts: DemoOptions, state: Path, lock: _DemoLock, say: Say) -> None:
    from prognos.fleet.simulate import LivingFleet, living_units, simulate_living

    say(f"demo state in {state}")
    bundle = _quick_bundle(settings, state / "demo" / "bundle", opts, say)
    key_file = state / "demo" / "key"
    key = _demo_key(settings, key_file, say)
    host = settings.host
    http_port = _free_port(host, settings.http_port)
    grpc_port = _free_port(host, settings.grpc_port)
    env = {**os.environ, "PROGNOS_DATA_DIR": str(state)}
    if settings.database_url:
        env["PROGNOS_DATABASE_URL"] = settings.database_url
    cmd = [sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(bundle.path), "--host", host,
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    log_path = state / "demo" / "server.log"
    url = f"http://{host}:{http_port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    timer: threading.Timer | None = None
    previous_int, previous_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    lock.note(url)
    try:
        _wait_ready(url, proc, log_path)
        cmapss = _cmapss(settings)
        real = cmapss is not None and bundle.manifest.dataset == "FD001"
        if real:
            source = ("FD001 test engines (unseen in training) then train engines; a unit that fails or whose "
                      "data ends is replaced by the next")
        else:
            source = "SYNTHETIC units; a unit that fails is replaced by a new one"
        data = cmapss if real and cmapss is not None else _sample_data(state / "demo" / "synthetic-data")
        units = living_units(data_dir=cmapss if real else None, seed=1)
        # From here on Ctrl-C and SIGTERM only ask the fleet to stop: a KeyboardInterrupt raised
        # while asyncio builds its loop leaves a half-made loop whose destructor prints a traceback.
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        _what_you_have(say, url=url, key=key, key_file=key_file, bundle=bundle, state=state, data=data,
                       dataset="FD001" if real else "SYNTHETIC", source=source, opts=opts, log_path=log_path)
        if opts.duration_s:
            timer = threading.Timer(opts.duration_s, stop.set)
            timer.daemon = True
            timer.start()
        summary = simulate_living(url, key, units, LivingFleet(opts.engines, opts.speed, prefix="ENG-"), stop=stop,
                                  on_event=_Quiet(say), start_cycles=_last_cycles(url, key))
        say(f"fleet stopped: {summary.readings_sent} readings sent in {summary.elapsed_s:.0f} s, "
            f"{summary.engines_done} units replaced")
        if summary.fatal:
            say(f"error: {summary.fatal}")
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=settings.shutdown_grace_s + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
        say("demo stopped")


