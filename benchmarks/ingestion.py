"""Fleet ingestion benchmark (run by hand, not in the test suite; a minute or two).

    .venv/bin/python benchmarks/ingestion.py [--bundle DIR] [--engines 200] [--batch 10] [--out table.md]

Starts the real server (``prognos serve``: REST + fleet app, one process) on SQLite (the default
file, WAL, synchronous=FULL) and on PostgreSQL 15 (a throw-away server from the machine's binaries
with fsync ON), and streams a synthetic fleet into it from this process: every engine sends its
readings in cycle order, ``--batch`` cycles per request (a telemetry gateway's batching), many
engines concurrently. Every request is answered only after its readings are committed and the
engine's latest window has been scored and stored ("predictions kept current"); at the end the
benchmark checks that every engine's stored prediction is at its last cycle.

Prints a dated markdown table: readings/s and requests/s sustained over the whole run, request
latency p50/p99 (ms), and the share of engines whose prediction is current. Client and server
share the machine's cores (the client's CPU use is included in what the server had to share).
Without ``--bundle`` it trains a small CNN ensemble on synthetic data first (window 30).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.integration.conftest_pg (PostgreSQL)


@dataclass(frozen=True)
class Result:
    database: str
    engines: int
    batch: int
    readings: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    current: float  # share of engines whose stored prediction is at their last cycle

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds

    def row(self) -> str:
        return (f"| {self.database} | {self.engines} | {self.batch} | {self.readings:,} | {self.readings_per_s:,.0f} | "
                f"{self.requests / self.seconds:,.0f} | {self.p50_ms:.1f} | {self.p99_ms:.1f} | {self.errors} | "
                f"{self.current:.0%} |")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train_bundle(out: Path) -> Path:
    from prognos.data.synthetic import synthetic_fleet
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    cfg = TrainConfig(folds=3, epochs=3, patience=3, window=30, holdout=0.0, threads=2)
    train_bundle_from_readings(synthetic_fleet(40, seed=1), "SYNTH", out, cfg, log=lambda m: None)
    return out


def _start_server(env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prognos serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("prognos serve did not become ready")


@dataclass
class _Stream:
    latencies: list[float]
    accepted: int
    errors: int
    last_sent: dict[str, int]  # engine -> last cycle acknowledged


async def _stream(url: str, key: str, fleet: Any, batch: int, concurrency: int, duration_s: float) -> _Stream:
    from prognos.data.schema import MEASUREMENT_FIELDS

    latencies: list[float] = []
    errors = 0
    accepted = 0
    last_sent: dict[str, int] = {}
    deadline = time.perf_counter() + duration_s
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as client:

        async def engine(e: Any) -> None:
            nonlocal errors, accepted
            rows = [{"cycle": int(c), **dict(zip(MEASUREMENT_FIELDS, map(float, v), strict=True))}
                    for c, v in zip(e.cycles, e.values, strict=True)]
            for i in range(0, len(rows), batch):
                async with gate:
                    if time.perf_counter() > deadline:
                        return
                    t = time.perf_counter()
                    r = await client.post(f"/api/v1/engines/bench-{e.engine_id}/readings", json=rows[i:i + batch])
                    latencies.append(time.perf_counter() - t)
                if r.status_code in (200, 201):
                    accepted += r.json()["accepted"]
                    last_sent[f"bench-{e.engine_id}"] = rows[i:i + batch][-1]["cycle"]
                else:
                    errors += 1

        await asyncio.gather(*(engine(e) for e in fleet.engines()))
    return _Stream(latencies, accepted, errors, last_sent)


def run_one(database: str, bundle: Path, engines: int, batch: int, concurrency: int, database_url: str | None,
            duration_s: float) -> Result:
    from prognos.data.synthetic import synthetic_fleet

    state = Path(tempfile.mkdtemp(prefix="prognos-bench-"))
    port = _free_port()
    env = dict(os.environ, PROGNOS_DATA_DIR=str(state), PROGNOS_BUNDLE=str(bundle), PROGNOS_HTTP_PORT=str(port),
               PROGNOS_GRPC_PORT=str(_free_port()), PROGNOS_LOG_LEVEL="WARNING", PROGNOS_LOG_SAMPLE_RATE="0",
               PROGNOS_RATE_LIMIT_PER_S="0")
    env.pop("PROGNOS_DATABASE_URL", None)
    if database_url:
        env["PROGNOS_DATABASE_URL"] = database_url
    key = subprocess.run([sys.executable, "-m", "prognos.cli", "keys", "create", "--role", "operator"], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(env, url)
    try:
        fleet = synthetic_fleet(engines, seed=42, id_prefix="")
        started = time.perf_counter()
        got = asyncio.run(_stream(url, key, fleet, batch, concurrency, duration_s))
        seconds = time.perf_counter() - started
        listing = httpx.get(f"{url}/api/v1/engines", params={"limit": 5000},
                            headers={"Authorization": f"Bearer {key}"}, timeout=60).json()["items"]
        current = sum(1 for e in listing if e["predicted_cycle"] == got.last_sent.get(e["engine_id"]))
        current_share = current / max(1, len(got.last_sent))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(state, ignore_errors=True)
    ms = np.asarray(got.latencies) * 1000
    return Result(database, engines, batch, got.accepted, len(got.latencies), seconds, float(np.percentile(ms, 50)),
                  float(np.percentile(ms, 99)), got.errors, current_share)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the servers and PostgreSQL started here are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--engines", type=int, default=200)
    ap.add_argument("--batch", type=int, nargs="+", default=[10, 1])
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of streaming per run (s)")
    ap.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    bundle = args.bundle or _train_bundle(Path(tempfile.mkdtemp(prefix="prognos-bench-bundle-")) / "b")
    pg = None
    results = []
    try:
        for database in args.databases:
            url = None
            if database == "postgresql":
                from tests.integration.conftest_pg import postgres_unavailable_reason, start_postgres

                reason = postgres_unavailable_reason()
                if reason:
                    print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
                    continue
                pg = pg or start_postgres(fsync=True)
            for batch in args.batch:
                if pg is not None and database == "postgresql":
                    url = pg.create_database()
                r = run_one(database, bundle, args.engines, batch, args.concurrency, url, args.duration)
                print(r.row(), file=sys.stderr)
                results.append(r)
    finally:
        if pg is not None:
            pg.stop()

    import psutil

    load = os.getloadavg()[1]  # the machine is shared: say how busy it was
    lines = [
        f"Ingestion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — {platform.processor() or platform.machine()}, "
        f"{psutil.cpu_count()} CPU cores (shared by server and client; 5-min load average {load:.1f} at the end), "
        f"Python {platform.python_version()}; "
        f"`prognos serve` on SQLite (WAL, synchronous=FULL) and PostgreSQL 15 (fsync on); synthetic engines "
        f"streamed cycle by cycle for {args.duration:g} s per row, {args.concurrency} requests in flight; "
        "every request scored and stored before its answer.",
        "",
        "| database | engines | cycles/request | readings | readings/s | requests/s | p50 ms | p99 ms | errors "
        "| predictions current |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
