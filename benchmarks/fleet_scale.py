"""Fleet scale benchmark: a synthetic fleet of 10,000 engines on PostgreSQL (run by hand, not in CI;
a few minutes).

    .venv/bin/python benchmarks/fleet_scale.py [--engines 10000] [--rounds 2] [--bundle DIR] [--out table.md]

Real processes on this machine: PostgreSQL 15 (fsync ON), Mosquitto, ``prognos serve``. Every
engine is first given ``--history`` readings (written straight into the store, not timed), then
streams ``--rounds`` new readings each (one reading per message/request, engines interleaved as a
live fleet reports), in three set-ups:

1. one box, MQTT:  publisher -> Mosquitto -> ``prognos serve --mqtt`` (role all) -> PostgreSQL
2. one box, REST:  32 concurrent clients -> ``prognos serve`` -> PostgreSQL
3. scale-out, REST: 32 clients -> nginx -> 2 gateways -> 2 inference replicas; one PostgreSQL

Reported per set-up: readings/s "with predictions current" (readings sent / time from the first
send until EVERY engine's stored prediction is at its last cycle), p50/p99 from publish (send) to
the stored prediction of that reading (client clock vs the prediction row's created_at; same
machine), and the database size per million readings (readings + predictions tables with their
indexes). Then, at the full fleet, the latency of ``GET /api/v1/engines`` (a page of 50 sorted by
RUL, a search, a deep page) and of what the fleet page loads (the HTML, then every engine in pages
of 5,000). Client, broker, database and servers share the machine's 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* helpers: PostgreSQL, Mosquitto, nginx

from tests.integration.conftest_pg import PostgresServer, start_postgres
from tests.scale.brokers import Mosquitto, Nginx
from tests.scale.processes import ADMIN_TOKEN, Proc, env_for


@dataclass
class Result:
    setup: str
    engines: int
    readings: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bytes_per_million: float
    current: float

    def row(self) -> str:
        return (f"| {self.setup} | {self.engines:,} | {self.readings:,} | {self.readings / self.seconds:,.0f} | "
                f"{self.p50_ms:,.0f} | {self.p99_ms:,.0f} | {self.bytes_per_million / 2**20:,.0f} MiB | "
                f"{self.current:.0%} |")


def _train_bundle(out: Path) -> Path:
    from prognos.data.synthetic import synthetic_fleet
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    cfg = TrainConfig(model="tcn", folds=2, epochs=3, patience=3, window=20, holdout=0.0, threads=2)
    train_bundle_from_readings(synthetic_fleet(24, seed=1), "SYNTH", out, cfg, log=lambda m: None)
    return out


def _fleet_rows(bundle: Path, engines: int, history: int, rounds: int, seed: int = 0
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per engine: ``history + rounds`` readings of a synthetic engine (cycles, values in
    MEASUREMENT_FIELDS order), engines drawn from a small synthetic fleet with noise."""
    import json

    from prognos.data.schema import MEASUREMENT_FIELDS
    from prognos.data.synthetic import synthetic_fleet

    # The engines the bundle was trained on (so readings stay inside its plausible ranges).
    base = [e for e in synthetic_fleet(24, seed=1).engines() if len(e.cycles) >= history + rounds]
    ranges = json.loads((bundle / "bundle.json").read_text()).get("input_ranges", {})
    rng = np.random.default_rng(seed)
    ids = [f"eng-{i:06d}" for i in range(engines)]
    n = history + rounds
    values = np.empty((engines, n, base[0].values.shape[1]))
    for i in range(engines):
        e = base[i % len(base)]
        start = int(rng.integers(0, len(e.cycles) - n + 1))
        values[i] = e.values[start:start + n] * (1 + rng.normal(0, 1e-4, size=(n, e.values.shape[1])))
    for name, (lo, hi) in ranges.items():  # the noise (and rounding) must not push a reading out of range (422)
        j = MEASUREMENT_FIELDS.index(name)
        margin = 1e-3 * (hi - lo)
        values[:, :, j] = np.clip(values[:, :, j], lo + margin, hi - margin)
    cycles = np.tile(np.arange(1, n + 1), (engines, 1))
    return ids, cycles, values


def _seed(url: str, ids: list[str], cycles: np.ndarray, values: np.ndarray, history: int) -> None:
    from prognos.fleet.database import connect, upgrade
    from prognos.fleet.records import ReadingBatch
    from prognos.fleet.store import FleetStore

    db = connect(url)
    upgrade(db)
    store = FleetStore(db)
    for lo in range(0, len(ids), 500):
        store.add_readings([ReadingBatch(e, cycles[i, :history], values[i, :history])
                            for i, e in enumerate(ids[lo:lo + 500], start=lo)])
    db.dispose()


def _payload(cycle: int, row: np.ndarray, fields: list[int], names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"cycle": int(cycle)}
    out.update({names[j]: round(float(row[j]), 4) for j in fields})
    return out


def _stream_order(ids: list[str], history: int, rounds: int) -> list[tuple[int, int]]:
    return [(i, history + r) for r in range(rounds) for i in range(len(ids))]


def _wait_current(url: str, ids: list[str], last_cycle: int, timeout_s: float = 300) -> float:
    """Seconds (monotonic clock) when every engine's stored prediction is at ``last_cycle``."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout_s
    last_n, last_change = -1, time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM engines WHERE predicted_cycle = %s", (last_cycle,)).fetchone()
            n = 0 if row is None else int(row[0])
            if n != last_n:
                last_n, last_change = n, time.monotonic()
            if n >= len(ids) or time.monotonic() > deadline:
                return time.monotonic()
            if time.monotonic() - last_change > 15:  # stuck (a refused reading): report the share current
                return last_change
            time.sleep(0.2)


def _latencies_and_size(url: str, sent: dict[tuple[str, int], float], last_cycle: int, n_engines: int
                        ) -> tuple[float, float, float, float]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT engine_id, cycle, min(created_at) FROM predictions GROUP BY engine_id, cycle"
                            ).fetchall()
        lat = [(created.timestamp() - sent[(e, c)]) * 1000 for e, c, created in rows if (e, c) in sent]
        size = conn.execute("SELECT pg_total_relation_size('readings') + pg_total_relation_size('predictions')"
                            ).fetchone()
        n_read = conn.execute("SELECT count(*) FROM readings").fetchone()
        current = conn.execute("SELECT count(*) FROM engines WHERE predicted_cycle = %s", (last_cycle,)).fetchone()
    assert size is not None and n_read is not None and current is not None
    p50, p99 = (float(np.percentile(lat, q)) if lat else float("nan") for q in (50, 99))
    return p50, p99, size[0] / n_read[0] * 1e6, current[0] / n_engines


def _spec(bundle: Path) -> tuple[list[int], list[str]]:
    import json

    from prognos.data.schema import MEASUREMENT_FIELDS

    required = json.loads((bundle / "bundle.json").read_text())["input_fields"]
    return [MEASUREMENT_FIELDS.index(f) for f in required], list(MEASUREMENT_FIELDS)


def run_mqtt(broker: Mosquitto, url: str, ids: list[str], cycles: np.ndarray, values: np.ndarray, history: int,
             rounds: int, bundle: Path) -> tuple[float, dict[tuple[str, int], float]]:
    from prognos.config import get_settings
    from prognos.fleet.mqtt import MqttPublisher

    fields, names = _spec(bundle)
    settings = get_settings(**broker.settings_overrides())  # type: ignore[arg-type]
    sent: dict[tuple[str, int], float] = {}
    with MqttPublisher(settings, max_in_flight=1000) as pub:
        pub.wait_connected()
        started = time.monotonic()
        for i, k in _stream_order(ids, history, rounds):
            while pub.in_flight > 2000:
                time.sleep(0.001)
            sent[(ids[i], int(cycles[i, k]))] = time.time()
            pub.publish(ids[i], [_payload(cycles[i, k], values[i, k], fields, names)])
        pub.flush(600)
    return started, sent


def run_rest(base_url: str, ids: list[str], cycles: np.ndarray, values: np.ndarray, history: int, rounds: int,
             bundle: Path, concurrency: int = 32) -> tuple[float, dict[tuple[str, int], float], int]:
    fields, names = _spec(bundle)
    order = _stream_order(ids, history, rounds)
    sent: dict[tuple[str, int], float] = {}
    errors = 0

    async def main() -> float:
        nonlocal errors
        it = iter(order)
        lock = threading.Lock()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits,
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            async def worker() -> None:
                nonlocal errors
                while True:
                    with lock:
                        nxt = next(it, None)
                    if nxt is None:
                        return
                    i, k = nxt
                    sent[(ids[i], int(cycles[i, k]))] = time.time()
                    r = await client.post(f"/api/v1/engines/{ids[i]}/readings",
                                          json=[_payload(cycles[i, k], values[i, k], fields, names)])
                    if r.status_code not in (200, 201):
                        errors += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return started

    started = asyncio.run(main())
    return started, sent, errors


def api_timings(base_url: str, engines: int) -> list[tuple[str, float]]:
    """Median of 5 (ms) for the listing queries and what the fleet page loads."""
    out = []
    with httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        def timed(name: str, fn: Any) -> None:
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1000)
            out.append((name, float(np.median(ts))))

        def ok(r: httpx.Response) -> None:
            assert r.status_code == 200, r.text[:200]

        timed("GET /api/v1/engines?limit=50&sort=-rul", lambda: ok(c.get("/api/v1/engines",
                                                                          params={"limit": 50, "sort": "-rul"})))
        timed("GET /api/v1/engines?limit=50&sort=lower&q=eng-00123", lambda: ok(c.get(
            "/api/v1/engines", params={"limit": 50, "sort": "lower", "q": "eng-00123"})))
        timed(f"GET /api/v1/engines?limit=50&offset={engines - 50}&sort=status", lambda: ok(c.get(
            "/api/v1/engines", params={"limit": 50, "offset": engines - 50, "sort": "status"})))
        timed("GET /ui/fleet (HTML)", lambda: ok(c.get("/ui/fleet")))

        def page_data() -> None:
            first = c.get("/api/v1/engines", params={"limit": 5000})
            ok(first)
            for off in range(5000, int(first.json()["total"]), 5000):
                ok(c.get("/api/v1/engines", params={"limit": 5000, "offset": off}))

        timed(f"fleet page data: all {engines:,} engines in pages of 5,000", page_data)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2, help="new readings per engine in each set-up")
    ap.add_argument("--history", type=int, default=30, help="readings per engine before the timed stream")
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--skip", default="", help="comma list of set-ups to skip: mqtt,rest,scaleout")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    for tool in ("mosquitto", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} not found (Debian package {tool})")
    work = Path(tempfile.mkdtemp(prefix="prognos-fleet-scale-"))
    pg: PostgresServer = start_postgres(fsync=True)
    broker = Mosquitto(work / "mosquitto")
    broker.start()
    procs: list[Proc] = []
    nginx: Nginx | None = None
    results: list[Result] = []
    timings: list[tuple[str, float]] = []
    skip = set(filter(None, args.skip.split(",")))
    try:
        bundle = args.bundle or _train_bundle(work / "bundle")
        ids, cycles, values = _fleet_rows(bundle, args.engines, args.history, args.rounds)
        last = args.history + args.rounds
        mqtt_env = {f"PROGNOS_{k.upper()}": str(v) for k, v in broker.settings_overrides().items()}

        def one_box(name: str, extra: list[str]) -> tuple[str, Proc]:
            url = pg.create_database(name)
            t0 = time.monotonic()
            _seed(url, ids, cycles, values, args.history)
            print(f"{name}: seeded {len(ids):,} engines x {args.history} readings in {time.monotonic() - t0:.0f} s",
                  file=sys.stderr)
            p = Proc(name, work / name, ["--bundle", str(bundle), *extra],
                     env_for(work / name, PROGNOS_DATABASE_URL=url, PROGNOS_MQTT_CLIENT_ID=f"bench-{name}",
                             **mqtt_env)).start().wait_ready()
            procs.append(p)
            return url, p

        if "mqtt" not in skip:
            url, p = one_box("onebox_mqtt", ["--mqtt"])
            started, sent = run_mqtt(broker, url, ids, cycles, values, args.history, args.rounds, bundle)
            done = _wait_current(url, ids, last)
            p50, p99, per_m, current = _latencies_and_size(url, sent, last, len(ids))
            results.append(Result("one box, MQTT -> serve --mqtt", len(ids), len(sent), done - started, p50, p99,
                                  per_m, current))
            p.stop()
        if "rest" not in skip:
            url, p = one_box("onebox_rest", [])
            started, sent, errors = run_rest(p.url, ids, cycles, values, args.history, args.rounds, bundle)
            done = _wait_current(url, ids, last)
            p50, p99, per_m, current = _latencies_and_size(url, sent, last, len(ids))
            results.append(Result(f"one box, REST ({errors} errors)", len(ids), len(sent), done - started, p50, p99,
                                  per_m, current))
            timings = api_timings(p.url, len(ids))
            p.stop()
        if "scaleout" not in skip:
            url = pg.create_database("scaleout")
            _seed(url, ids, cycles, values, args.history)
            replicas = [Proc(f"inference-{i}", work / f"inference-{i}", ["--role", "inference", "--bundle",
                                                                          str(bundle)], env_for(work / f"inf-{i}"))
                        for i in (1, 2)]
            gateways = [Proc(f"gateway-{i}", work / f"gateway-{i}",
                             ["--role", "gateway", "--inference", ",".join(r.grpc_address for r in replicas)],
                             env_for(work / f"gw-{i}", PROGNOS_DATABASE_URL=url)) for i in (1, 2)]
            for r in replicas:
                procs.append(r.start())
            for r in replicas:
                r.wait_ready()
            for g in gateways:
                procs.append(g.start())
            for g in gateways:
                g.wait_ready()
            nginx = Nginx(work / "nginx", [f"127.0.0.1:{g.http_port}" for g in gateways])
            nginx.start()
            started, sent, errors = run_rest(nginx.url, ids, cycles, values, args.history, args.rounds, bundle)
            done = _wait_current(url, ids, last)
            p50, p99, per_m, current = _latencies_and_size(url, sent, last, len(ids))
            results.append(Result(f"2 gateways + 2 inference, REST via nginx ({errors} errors)", len(ids), len(sent),
                                  done - started, p50, p99, per_m, current))
    finally:
        if nginx is not None:
            nginx.stop()
        for p in procs:
            p.stop()
        broker.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    lines = [f"fleet_scale.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
             f"load avg {load[0]:.1f}/{load[1]:.1f}, PostgreSQL 15 fsync on, {args.history} readings of history per "
             f"engine, {args.rounds} new readings per engine, one reading per message/request",
             "",
             "| set-up | engines | readings | readings/s, predictions current | publish -> stored prediction p50 ms "
             "| p99 ms | DB per million readings | engines current |",
             "|---|---:|---:|---:|---:|---:|---:|---:|",
             *(r.row() for r in results)]
    if timings:
        lines += ["", f"| at {args.engines:,} engines (one box) | median of 5, ms |", "|---|---:|",
                  *(f"| {name} | {ms:,.0f} |" for name, ms in timings)]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
