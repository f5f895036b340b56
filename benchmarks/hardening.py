"""Hardening benchmark (issue 19; run by hand, not in the test suite; a few minutes).

    PYTHONPATH=src .venv/bin/python benchmarks/hardening.py --bundle DIR [--src SRC] [--cmapss DIR] [--out t.md]

Starts the real server (``prognos serve``, SQLite) from ``--src`` (default: this checkout's
``src``; pass an older checkout's to measure "before") and, while a thread asks ``/health`` every
10 ms on its own connection, sends what used to stall or exhaust it:

* escaped quotes: ``[`` x 40 + ``"`` + ``\\"`` x 32,000 (63 KiB) and the same up to 8 MiB, to
  ``/api/v1/predict`` anonymously: the answer's status and time, ``/health`` p50/p99 meanwhile;
* 300 slow bodies (headers and one byte of a 1,000-byte body, then nothing): viewer reads and
  predicts during them (status, p99), ``/ready``, and how the slow ones ended;
* 20,000 requests with random 201-character methods: ``/metrics`` size before and after;
* a 40 MiB upload of real C-MAPSS readings (FD001 repeated, as tests/reliability/test_limits.py):
  the server's peak RSS growth (VmHWM) and ``/health`` p99 meanwhile.

Prints a dated markdown table. Client and server share the machine's cores; the numbers are what
this machine gave, the targets (docs/benchmarks.md) are the issue's.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*: server env, readings

from tests.reliability.conftest import ADMIN, free_port, serve_env

ESCAPED_63K = b"[" * 40 + b'"' + b'\\"' * 32_000
ESCAPED_8M = b"[" * 40 + b'"' + b'\\"' * (4 * 2**20 - 64)
MB = 2**20


@contextmanager
def server(workdir: Path, bundle: Path, src: Path, **settings: str) -> Iterator[tuple[str, int]]:
    """``prognos serve`` from ``src``; yields (url, pid)."""
    port, grpc_port = free_port(), free_port()
    env = serve_env(workdir, bundle, http_port=str(port), grpc_port=str(grpc_port), rate_limit_per_s="0",
                    anonymous_rate_limit_per_s="0", auth_failure_rate_limit_per_s="0", **settings)
    env["PYTHONPATH"] = str(src)
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve"], env=env, cwd=workdir, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"server not ready: {(workdir / 'serve.log').read_text()[-2000:]}")
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:  # a stalled loop never handles SIGTERM
            proc.kill()
            proc.wait(5)


def loop_stalls(url: str) -> str:
    """Event-loop lag samples over 50 ms since the server started (its own measurement)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=30).text
    except httpx.HTTPError:
        return "server not answering"
    within = re.search(r'prognos_event_loop_lag_seconds_bucket\{le="0\.05"\} (\S+)', text)
    total = re.search(r"prognos_event_loop_lag_seconds_count (\S+)", text)
    if within is None or total is None:
        return "not measured"
    buckets = re.findall(r'prognos_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', text)
    worst = next(le for le, count in buckets if float(count) == float(total.group(1)))
    return (f"{int(float(total.group(1)) - float(within.group(1)))} of {int(float(total.group(1)))} "
            f"(worst <= {float(worst) * 1000:g} ms)")


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class HealthProbe:
    """``/health`` every 10 ms on one keep-alive connection, latencies in ms (timeouts count as 30 s)."""

    def __init__(self, url: str) -> None:
        self.url, self.latencies = url, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    c.get("/health")
                    self.latencies.append((time.perf_counter() - started) * 1000)
                except httpx.HTTPError:
                    self.latencies.append(30_000.0)
                time.sleep(0.01)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        xs = self.latencies
        if len(xs) < 2:
            return f"{len(xs)} probes"
        p99 = statistics.quantiles(xs, n=100, method="inclusive")[98]
        return f"p50 {statistics.median(xs):.1f} / p99 {p99:.1f} / max {max(xs):.1f} ms ({len(xs)} probes)"


def escaped(url: str, body: bytes, repeat: int, timeout_s: float) -> tuple[str, str]:
    outcomes = []
    with HealthProbe(url) as probe, httpx.Client(base_url=url, timeout=timeout_s) as c:
        time.sleep(0.3)
        for _ in range(repeat):
            started = time.perf_counter()
            try:
                r = c.post("/api/v1/predict", content=body, headers={"Content-Type": "application/json"})
                outcomes.append(f"{r.status_code} in {(time.perf_counter() - started) * 1000:.0f} ms")
            except httpx.TimeoutException:
                outcomes.append(f"no answer in {timeout_s:g} s")
                break
        time.sleep(0.3)
    shown = sorted(set(outcomes), key=outcomes.index)
    return f"{len(outcomes)} requests: " + ", ".join(shown[:3]) + ("..." if len(shown) > 3 else ""), probe.summary()


def slow_bodies(url: str, bundle: Path, n: int = 300) -> tuple[str, str]:
    from tests.unit.serving.factory import readings

    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {ADMIN}"}) as admin:
        viewer = admin.post("/api/v1/keys", json={"role": "viewer", "name": "bench"}).json()["key"]
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for i in range(n):
        if i % 25 == 0:  # 25 at a time (as tests/reliability/test_hardening.py: a burst is load, not a stall)
            time.sleep(0.02)
        s = socket.create_connection((host, int(port)), timeout=60)
        s.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{")
        socks.append(s)
    body = {"engine_id": "e1", "sensor_data": readings(bundle, 25)}
    statuses: list[int] = []
    latencies: list[float] = []
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {viewer}"}) as c:
        for _ in range(20):
            for method, path, kw in (("GET", "/api/v1/engines", {}), ("POST", "/api/v1/predict", {"json": body})):
                started = time.perf_counter()
                try:
                    statuses.append(c.request(method, path, **kw).status_code)  # type: ignore[arg-type]
                except httpx.HTTPError:
                    statuses.append(0)
                latencies.append((time.perf_counter() - started) * 1000)
        ready = c.get("/ready")
    ends: dict[str, int] = {}
    deadline = time.monotonic() + 30
    for s in socks:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            first = s.recv(64).split(b"\r\n", 1)[0].decode() or "closed"
        except (TimeoutError, ConnectionResetError):
            first = "still open after 30 s"
        ends[first] = ends.get(first, 0) + 1
        s.close()
    counts = {k: statuses.count(k) for k in sorted(set(statuses))}
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    return (f"viewer reads + predicts: statuses {counts}, p99 {p99:.0f} ms; /ready {ready.status_code}",
            "slow clients: " + ", ".join(f"{v} x {k}" for k, v in sorted(ends.items())))


def random_methods(url: str, n: int) -> str:
    host, port = url.removeprefix("http://").split(":")
    rng = random.Random(19)
    for _ in range(5):  # the one "other" series, and /metrics's own, exist from here on
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(b"X" * 201 + b" /api/v1/engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.recv(64)
    httpx.get(f"{url}/metrics", timeout=60)
    before = len(httpx.get(f"{url}/metrics", timeout=60).content)
    started = time.perf_counter()
    statuses: dict[str, int] = {}
    for _ in range(n):
        method = "".join(rng.choices(string.ascii_uppercase, k=201))
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(f"{method} /api/v1/engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            status = s.recv(64)[9:12].decode() or "closed"
        statuses[status] = statuses.get(status, 0) + 1
    seconds = time.perf_counter() - started
    scrape = time.perf_counter()
    after = len(httpx.get(f"{url}/metrics", timeout=120).content)
    scrape_ms = (time.perf_counter() - scrape) * 1000
    return (f"{n} requests in {seconds:.0f} s, statuses {statuses}; /metrics {before / 1024:.0f} KiB -> "
            f"{after / 1024:.0f} KiB ({100 * (after - before) / before:+.1f} %), scrape {scrape_ms:.0f} ms")


def upload(url: str, pid: int, cmapss: Path) -> tuple[str, str]:
    from tests.reliability.test_limits import _real_readings_file

    data = _real_readings_file(cmapss, 40 * MB)
    with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        c.get("/api/v1/engines")  # warm the routes: the peak below is the upload's, not start-up's
    before = vm_kb(pid, "VmHWM")
    with HealthProbe(url) as probe, httpx.Client(base_url=url, timeout=900,
                                                 headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        time.sleep(0.3)
        started = time.perf_counter()
        r = c.post("/api/v1/readings/upload", files={"file": ("big.txt", data, "text/plain")},
                   params={"engine_prefix": "u"})
        seconds = time.perf_counter() - started
    grown = (vm_kb(pid, "VmHWM") - before) / 1024
    accepted = r.json().get("accepted") if r.status_code < 300 else r.text[:80]
    return (f"{len(data) / MB:.1f} MiB: {r.status_code} ({accepted} readings) in {seconds:.1f} s; peak RSS grew "
            f"{grown:.0f} MB", probe.summary())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="a model bundle (e.g. the tests' tiny bundle)")
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--cmapss", type=Path, default=None, help="C-MAPSS folder (the upload case; skipped without)")
    parser.add_argument("--methods", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout of one hostile request (s)")
    parser.add_argument("--repeat", type=int, default=20, help="63 KiB bodies sent (8 MiB: a quarter)")
    parser.add_argument("--only", default="escaped,slow,methods,upload")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.cmapss is None:
        from prognos.config import default_cmapss_dir

        args.cmapss = default_cmapss_dir()
    only = set(args.only.split(","))
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "escaped" in only:
            with server(Path(tmp) / "a", args.bundle, args.src) as (url, _):
                rows.append(("63 KiB escaped quotes -> /predict", *escaped(url, ESCAPED_63K, args.repeat,
                                                                           args.timeout)))
                rows.append(("8 MiB escaped quotes -> /predict", *escaped(url, ESCAPED_8M, max(1, args.repeat // 4),
                                                                          args.timeout)))
                rows[-1] += (loop_stalls(url),)
        if "slow" in only:
            with server(Path(tmp) / "b", args.bundle, args.src, http_body_timeout_s="10") as (url, _):
                rows.append(("300 slow bodies (deadline 10 s)", *slow_bodies(url, args.bundle), loop_stalls(url)))
        if "methods" in only:
            with server(Path(tmp) / "c", args.bundle, args.src) as (url, _):
                rows.append((f"{args.methods} random 201-char methods", random_methods(url, args.methods), "",
                             loop_stalls(url)))
        if "upload" in only and args.cmapss is not None:
            with server(Path(tmp) / "d", args.bundle, args.src) as (url, pid):
                rows.append(("40 MiB upload (C-MAPSS text)", *upload(url, pid, args.cmapss), loop_stalls(url)))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Hardening benchmark, {stamp}, {platform.node()} ({os.cpu_count()} cores), server from {args.src}", "",
             "| probe | answer | /health meanwhile (or the others' answers) | loop lag > 50 ms (samples, "
             "whole run) |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + (" |" if len(row) == 4 else " | |") for row in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
