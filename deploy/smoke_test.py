"""Container smoke test of the prognos runtime image, run for real with podman (or docker).

    .venv/bin/python deploy/smoke_test.py [--image localhost/prognos:latest] [--load-s 120]
        [--predict-rate 100] [--ingest-rate 20] [--memory 600m] [--bundle DIR] [--budget-mb 340]

Checks, in order (exit 1 at the first that fails, with the container log):
1. the container runs as a non-root user;
2. ``/ready`` answers 200 within 30 s of ``run``;
3. one predict and one ingest request succeed;
4. steady load (``--predict-rate`` predictions/s + ``--ingest-rate`` readings/s for ``--load-s`` s)
   completes with 0 errors under ``--memory`` without an OOM kill;
5. data written to the volume survives replacing the container (same named volume);
6. SIGTERM stops it within the grace period (exit code 0, not SIGKILL).
Prints the image size, the container's peak memory (cgroup) and the load's latency percentiles.

Without ``--bundle`` a tiny bundle is trained on synthetic data with the host venv (needs torch)
and mounted read-only. Uses the host's ``prognos`` package only for that and for test data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ADMIN_TOKEN = "smoke-admin-token"
GRACE_S = 10.0
READY_LIMIT_S = 30.0
# Measurement channels of a reading, in C-MAPSS column order (the REST contract's field names).
FIELDS = ("setting_1", "setting_2", "setting_3", *(f"s{i}" for i in range(1, 22)))


class SmokeFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Engine:
    """The container engine's command line with the flags this kind of machine needs."""

    name: str

    @property
    def base(self) -> list[str]:
        if Path(self.name).name == "podman":
            return [self.name, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
        return [self.name]

    @property
    def run_flags(self) -> list[str]:
        if Path(self.name).name == "podman":
            return ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
        return []

    def force_remove(self, name: str) -> None:
        """Remove a container now, whatever its state (docker's rm has no stop timeout option)."""
        timeout = ["-t", "0"] if Path(self.name).name == "podman" else []
        # -v: also the anonymous volume the image's VOLUME gets when nothing is mounted there
        subprocess.run([*self.base, "rm", "-f", "-v", *timeout, name], capture_output=True)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        try:
            cp = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"{self.name} {' '.join(args[:3])}...: no answer in {timeout:.0f} s") from None
        if check and cp.returncode != 0:
            raise SmokeFailure(f"{self.name} {' '.join(args[:3])}...: exit {cp.returncode}\n{cp.stderr.strip()}")
        return cp.stdout.strip()


@dataclass
class Container:
    engine: Engine
    image: str
    bundle: Path
    volume: str
    memory: str
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"prognos-smoke-{uuid.uuid4().hex[:8]}")

    def start(self) -> float:
        self.started = time.monotonic()
        self.engine(
            "run", "-d", "--name", self.name, *self.engine.run_flags,
            "--memory", self.memory, "--memory-swap", self.memory,  # no swap: the limit is the limit
            "-p", f"127.0.0.1:{self.port}:8000",
            "-v", f"{self.bundle}:/bundle:ro", "-v", f"{self.volume}:/var/lib/prognos",
            "-e", "PROGNOS_BUNDLE=/bundle", "-e", f"PROGNOS_ADMIN_TOKEN={ADMIN_TOKEN}",
            "-e", f"PROGNOS_SHUTDOWN_GRACE_S={GRACE_S:g}", "-e", "PROGNOS_LOG_SAMPLE_RATE=0",
            self.image,
        )
        return self.started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, limit_s: float = READY_LIMIT_S) -> float:
        deadline = self.started + limit_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.state("{{.State.Running}}") != "true":
                    raise SmokeFailure(f"container exited before /ready:\n{self.logs()}")
                try:
                    if client.get(f"{self.url}/ready").status_code == 200:
                        return time.monotonic() - self.started
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise SmokeFailure(f"/ready not 200 within {limit_s:.0f} s:\n{self.logs()}")

    def state(self, fmt: str) -> str:
        return self.engine("inspect", "--format", fmt, self.name, check=False)

    def logs(self, tail: int = 40) -> str:
        cp = subprocess.run([*self.engine.base, "logs", "--tail", str(tail), self.name],
                            capture_output=True, text=True)
        return (cp.stdout + cp.stderr).strip()

    def memory_cgroup(self) -> Path | None:
        """The container's memory cgroup directory (cgroup v1 or v2), found through its init PID."""
        pid = self.state("{{.State.Pid}}")
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if controllers == "":
                return Path("/sys/fs/cgroup") / path.lstrip("/")
        return None

    def peak_memory(self) -> tuple[int | None, int]:
        """(peak bytes, OOM kills) from the cgroup; None when it cannot be read."""
        cg = self.memory_cgroup()
        if cg is None:
            return None, 0
        peak = None
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if (cg / name).exists():
                peak = int((cg / name).read_text().split()[0])
                break
        oom = 0
        for name in ("memory.oom_control", "memory.events"):
            if (cg / name).exists():
                for row in (cg / name).read_text().splitlines():
                    key, _, value = row.partition(" ")
                    if key == "oom_kill":
                        oom = int(value)
        return peak, oom

    def remove(self) -> None:
        self.engine.force_remove(self.name)


# ---- test data -----------------------------------------------------------------------------------


def train_tiny_bundle(out: Path) -> Path:
    from prognos.data.synthetic import synthetic_fleet
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    cfg = TrainConfig(model="tcn", folds=2, epochs=4, patience=4, window=20, holdout=0.0, threads=1)
    train_bundle_from_readings(synthetic_fleet(24, seed=1), "SYNTH", out, cfg, log=lambda m: None)
    return out


def reading(cycle: int, row: np.ndarray) -> dict[str, Any]:
    return {"cycle": int(cycle), **{name: float(v) for name, v in zip(FIELDS, row, strict=True)}}


@dataclass
class Fleet:
    """Synthetic engines to predict on and to stream readings from."""

    cycles: list[np.ndarray]
    values: list[np.ndarray]

    @classmethod
    def make(cls, n: int = 30) -> Fleet:
        from prognos.data.synthetic import synthetic_fleet

        engines = list(synthetic_fleet(n, seed=7).engines())
        return cls([e.cycles for e in engines], [e.values for e in engines])

    def window(self, i: int, length: int = 40) -> list[dict[str, Any]]:
        k = i % len(self.cycles)
        cycles, values = self.cycles[k], self.values[k]
        end = length + (i * 7) % max(1, len(cycles) - length)  # a different window each time: no cache hits
        return [reading(c, v) for c, v in zip(cycles[end - length:end], values[end - length:end], strict=True)]

    def stream(self, k: int, t: int) -> dict[str, Any]:
        k %= len(self.cycles)
        t %= len(self.cycles[k])
        return reading(self.cycles[k][t], self.values[k][t])


# ---- load ------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    first_errors: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(what)

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


async def _http_worker(host: str, port: int, jobs: asyncio.Queue[Any], results: dict[str, LoadResult],
                       timeout_s: float = 10.0) -> None:
    """One keep-alive HTTP/1.1 connection serving jobs from the queue. A deliberately tiny client:
    a general-purpose one (httpx) costs more CPU per request than this shared 2-core machine can
    spare at 120 requests/s, which would measure the client, not the server."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        job = await jobs.get()
        if job is None:
            break
        kind, request, ok, scheduled = job
        r = results[kind]
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
            writer.write(request)

            async def answer(rd: asyncio.StreamReader) -> tuple[int, bytes, bool]:
                status = int((await rd.readline()).split()[1])
                length, close = 0, False
                while (line := await rd.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and value.strip().lower() == "close":
                        close = True
                return status, await rd.readexactly(length), close

            status, body, close = await asyncio.wait_for(answer(reader), timeout_s)
            r.latencies.append(time.perf_counter() - scheduled)
            if status not in ok:
                r.fail(f"{kind}: HTTP {status} {body[:200]!r}")
            if close:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError) as exc:
            r.fail(f"{kind}: {type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def _request(method: str, path: str, body: bytes, host: str) -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def steady_load(url: str, fleet: Fleet, seconds: float, predict_rate: float, ingest_rate: float,
                      connections: int = 32) -> dict[str, LoadResult]:
    """Open-loop load: requests are due on a fixed schedule whatever the answers, and latency counts
    from the due time, so a slow server cannot hide behind a waiting client (no coordinated omission)."""
    results = {"predict": LoadResult(), "ingest": LoadResult()}
    host, port = url.removeprefix("http://").rsplit(":", 1)
    predicts = [_request("POST", "/api/v1/predict", json.dumps(
        {"engine_id": f"smoke-p{i % 30}", "sensor_data": fleet.window(i)}).encode(), host) for i in range(500)]
    ingest_engines = 20
    jobs: asyncio.Queue[Any] = asyncio.Queue()
    workers = [asyncio.create_task(_http_worker(host, int(port), jobs, results)) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    streams = []
    if predict_rate > 0:
        streams.append(("predict", predict_rate))
    if ingest_rate > 0:
        streams.append(("ingest", ingest_rate))
    due = sorted((i / rate, kind, i) for kind, rate in streams for i in range(int(seconds * rate)))
    start = loop.time()
    for offset, kind, i in due:
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        scheduled = time.perf_counter()
        if kind == "predict":
            jobs.put_nowait(("predict", predicts[i % len(predicts)], (200,), scheduled))
        else:
            k, t = i % ingest_engines, 40 + i // ingest_engines  # after the seeded history
            body = json.dumps([fleet.stream(k, t)]).encode()
            jobs.put_nowait(("ingest", _request("POST", f"/api/v1/engines/smoke-i{k}/readings", body, host),
                             (200, 201), scheduled))
        results[kind].sent += 1
    for _ in workers:
        jobs.put_nowait(None)
    await asyncio.gather(*workers)
    return results


# ---- the checks ------------------------------------------------------------------------------------


def check(cond: bool, message: str, c: Container | None = None) -> None:
    if not cond:
        raise SmokeFailure(message + (f"\n--- container log ---\n{c.logs()}" if c is not None else ""))
    print(f"  ok  {message}")


def run(args: argparse.Namespace) -> None:
    engine = Engine(args.engine)
    engine("image", "exists", args.image) if engine.name.endswith("podman") else engine("image", "inspect", args.image)
    size_mb = int(engine("image", "inspect", "--format", "{{.Size}}", args.image)) / 1e6
    print(f"image {args.image}: {size_mb:.0f} MB (budget {args.budget_mb} MB)")
    check(size_mb <= args.budget_mb, f"image size {size_mb:.0f} MB within the {args.budget_mb} MB budget")

    work = Path(tempfile.mkdtemp(prefix="prognos-smoke-"))
    volume = f"prognos-smoke-{uuid.uuid4().hex[:8]}"
    containers: list[Container] = []
    try:
        bundle = args.bundle
        if bundle is None:
            t0 = time.monotonic()
            bundle = train_tiny_bundle(work / "bundle")
            print(f"trained a tiny bundle on synthetic data in {time.monotonic() - t0:.0f} s")
        else:
            bundle = Path(shutil.copytree(bundle, work / "bundle"))
        # The container's user (uid 10001) reads the bind-mounted bundle.
        for path in (work, bundle, *bundle.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        engine("volume", "create", volume)
        fleet = Fleet.make()

        c = Container(engine, args.image, Path(bundle).resolve(), volume, args.memory)
        containers.append(c)
        c.start()
        ready_s = c.wait_ready()
        check(True, f"/ready answered 200 {ready_s:.1f} s after run (limit {READY_LIMIT_S:.0f} s)")
        uid = engine("exec", c.name, "id", "-u")
        check(uid != "0", f"the server runs as a non-root user (uid {uid})", c)
        pid1_user = engine("exec", c.name, "sh", "-c", "stat -c %u /proc/1")
        check(pid1_user == uid and "prognos" in engine("exec", c.name, "cat", "/proc/1/cmdline"),
              f"PID 1 is prognos itself, as uid {pid1_user} (exec-form entry point: signals reach it)", c)

        if engine.name.endswith("podman"):  # the image's HEALTHCHECK (podman runs it on demand here)
            cp = subprocess.run([*engine.base, "healthcheck", "run", c.name], capture_output=True, text=True)
            check(cp.returncode == 0, f"the image's HEALTHCHECK (GET /ready) passes: exit {cp.returncode} "
                  f"{(cp.stdout + cp.stderr).strip()[-200:]}", c)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=c.url, headers=headers, timeout=10) as client:
            r = client.post("/api/v1/predict", json={"engine_id": "smoke-1", "sensor_data": fleet.window(1)})
            check(r.status_code == 200 and "predicted_rul" in r.text,
                  f"predict: HTTP {r.status_code} {r.text[:120]}", c)
            for k in range(20):  # seed each streamed engine with a full window of history
                history = [fleet.stream(k, t) for t in range(40)]
                r = client.post(f"/api/v1/engines/smoke-i{k}/readings", json=history)
                check(r.status_code in (200, 201), f"ingest: HTTP {r.status_code}", c) if k == 0 else None
                if r.status_code not in (200, 201):
                    raise SmokeFailure(f"ingest smoke-i{k}: HTTP {r.status_code} {r.text[:300]}")

        print(f"steady load: {args.predict_rate:g} predictions/s + {args.ingest_rate:g} readings/s for "
              f"{args.load_s:g} s under --memory {args.memory} ...")
        t0 = time.monotonic()
        results = asyncio.run(steady_load(c.url, fleet, args.load_s, args.predict_rate, args.ingest_rate))
        took = time.monotonic() - t0
        peak, oom = c.peak_memory()
        oom_killed = c.state("{{.State.OOMKilled}}") == "true"
        running = c.state("{{.State.Running}}") == "true"
        print(f"  {'stream':8} {'sent':>6} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for kind, r in results.items():
            print(f"  {kind:8} {r.sent:6d} {r.errors:6d} {r.pct(50):7.1f} {r.pct(99):7.1f} {r.pct(100):7.1f}")
        print(f"  load took {took:.1f} s; container peak memory "
              f"{'unknown' if peak is None else f'{peak / 2**20:.0f} MiB'} of {args.memory}")
        for r in results.values():
            for e in r.first_errors:
                print(f"    {e}")
        check(running and not oom_killed and oom == 0, f"no OOM kill under --memory {args.memory} "
              f"(running={running}, OOMKilled={oom_killed}, oom_kill={oom})", c)
        errors = sum(r.errors for r in results.values())
        check(errors == 0, f"0 errors in {sum(r.sent for r in results.values())} requests", c)

        # Persistence: replace the container (same named volume) and read back what was ingested.
        with httpx.Client(base_url=c.url, headers=headers, timeout=10) as client:
            before = client.get("/api/v1/engines/smoke-i0/readings", params={"limit": 1}).json()["total"]
        c.engine("stop", "-t", str(int(GRACE_S) + 5), c.name)
        c.remove()
        c2 = Container(engine, args.image, Path(bundle).resolve(), volume, args.memory)
        containers.append(c2)
        c2.start()
        c2.wait_ready()
        with httpx.Client(base_url=c2.url, headers=headers, timeout=10) as client:
            after = client.get("/api/v1/engines/smoke-i0/readings", params={"limit": 1}).json()["total"]
        check(before > 40 and after == before,
              f"readings on the volume survive a new container: {before} before, {after} after", c2)

        # SIGTERM with requests in flight: the process drains and exits 0 within its grace period.
        async def trickle() -> None:
            await steady_load(c2.url, fleet, 4.0, 50, 0)

        def term_during_load() -> float:
            import threading

            load = threading.Thread(target=lambda: asyncio.run(trickle()), daemon=True)
            load.start()
            time.sleep(2.5)  # the trickle builds its bodies (~1 s), then sends for a while
            t = time.monotonic()
            engine("kill", "--signal", "TERM", c2.name)
            # Poll rather than `podman wait`, which can hang on hosts without systemd.
            while c2.state("{{.State.Running}}") == "true" and time.monotonic() - t < GRACE_S + 30:
                time.sleep(0.1)
            stopped = time.monotonic() - t
            load.join(timeout=15)
            return stopped

        stop_s = term_during_load()
        code = c2.state("{{.State.ExitCode}}")
        check(code == "0" and stop_s <= GRACE_S + 1.0,
              f"SIGTERM stopped it in {stop_s:.1f} s (grace {GRACE_S:g} s), exit code {code}", c2)
        # SageMaker starts the image as `IMAGE serve` with the model unpacked read-only at /opt/ml/model.
        sm_name, sm_port = f"prognos-smoke-sm-{uuid.uuid4().hex[:8]}", free_port()
        sm = Container(engine, args.image, Path(bundle).resolve(), volume, args.memory, name=sm_name)
        containers.append(sm)
        sm.started = time.monotonic()
        engine("run", "-d", "--name", sm_name, *engine.run_flags, "--memory", args.memory,
               "-p", f"127.0.0.1:{sm_port}:8080", "-v", f"{Path(bundle).resolve()}:/opt/ml/model:ro", args.image,
               "serve")
        with httpx.Client(base_url=f"http://127.0.0.1:{sm_port}", timeout=10) as client:
            deadline = time.monotonic() + READY_LIMIT_S
            while True:
                try:
                    if client.get("/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or sm.state("{{.State.Running}}") != "true":
                    raise SmokeFailure(f"SageMaker mode: /ping not 200 within {READY_LIMIT_S:.0f} s:\n{sm.logs()}")
                time.sleep(0.2)
            r = client.post("/invocations", json={"engine_id": "sm-1", "sensor_data": fleet.window(2)})
            check(r.status_code == 200 and "predicted_rul" in r.text,
                  f"`IMAGE serve` with /opt/ml/model answers the SageMaker contract: /ping 200, /invocations "
                  f"HTTP {r.status_code}", sm)
        print(f"SUMMARY image_mb={size_mb:.0f} ready_s={ready_s:.1f} "
              f"peak_mib={'nan' if peak is None else f'{peak / 2**20:.0f}'} "
              + " ".join(f"{k}_sent={r.sent} {k}_errors={r.errors} {k}_p99_ms={r.pct(99):.1f}"
                         for k, r in results.items())
              + f" sigterm_s={stop_s:.1f}")
    finally:
        for c in containers:
            c.remove()
        subprocess.run([*engine.base, "volume", "rm", "-f", volume], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="localhost/prognos:latest")
    p.add_argument("--engine", default=os.environ.get("PROGNOS_CONTAINER_ENGINE", "podman"))
    p.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: train a tiny one)")
    p.add_argument("--memory", default="600m")
    p.add_argument("--load-s", type=float, default=120.0)
    p.add_argument("--predict-rate", type=float, default=100.0)
    p.add_argument("--ingest-rate", type=float, default=20.0)
    p.add_argument("--budget-mb", type=int, default=int(os.environ.get("PROGNOS_IMAGE_BUDGET_MB", "340")))
    args = p.parse_args()
    if shutil.which(args.engine) is None:
        print(f"error: {args.engine} not found on PATH", file=sys.stderr)
        return 1
    try:
        run(args)
    except SmokeFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    print("container smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
