"""Two gateways behind nginx on one PostgreSQL (and one inference replica), readings of the same
engines interleaved through both: every acknowledged reading is stored once, each engine's stored
prediction is the one its committed history gives, and each alert condition is open once."""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from prognos.fleet.database import connect, upgrade
from tests.integration.conftest_pg import PostgresServer
from tests.scale.brokers import Nginx, nginx_unavailable_reason
from tests.scale.processes import ADMIN_TOKEN, Proc, env_for
from tests.unit.serving.factory import _FLEET, readings

ENGINES = 4
CYCLES = 90  # the last CYCLES readings of each synthetic engine: the end of life, where alerts open


@pytest.fixture
def lb(tmp_path: Path, tiny_bundle: Path, postgres: PostgresServer) -> Iterator[tuple[Nginx, list[Proc]]]:
    if reason := nginx_unavailable_reason():
        pytest.skip(reason)
    url = postgres.create_database("fleet")
    db = connect(url)
    upgrade(db)  # once, before the gateways start (they would race to migrate)
    db.dispose()
    inference = Proc("inference", tmp_path / "inference", ["--role", "inference", "--bundle", str(tiny_bundle)],
                     env_for(tmp_path / "inference"))
    gateways = [Proc(f"gateway-{i}", tmp_path / f"gateway-{i}", ["--role", "gateway", "--inference",
                                                                 inference.grpc_address],
                     env_for(tmp_path / f"gateway-{i}", PROGNOS_DATABASE_URL=url,
                             PROGNOS_INFERENCE_HEALTH_INTERVAL_S="0.3"))
                for i in (1, 2)]
    nginx = Nginx(tmp_path / "nginx", [f"127.0.0.1:{g.http_port}" for g in gateways])
    procs = [inference, *gateways]
    try:
        inference.start().wait_ready()
        for g in gateways:
            g.start()
        for g in gateways:
            g.wait_ready()
        nginx.start()
        yield nginx, gateways
    finally:
        nginx.stop()
        for p in procs:
            p.stop()


def _history_readings(bundle: Path) -> int:
    window = int(json.loads((bundle / "bundle.json").read_text())["window"])
    return max(2 * window + 20, 25)  # the fleet's history length (window + warm-up; stuck-sensor run)


def test_two_gateways_on_one_postgres_store_each_reading_once_and_score_the_latest_window(
        lb: tuple[Nginx, list[Proc]], tiny_bundle: Path) -> None:
    nginx, gateways = lb
    lengths = [len(e.cycles) for e in _FLEET.engines()]
    series = {f"pg-{k}": readings(tiny_bundle, CYCLES, engine=k, start=lengths[k] - CYCLES) for k in range(ENGINES)}
    # One queue in cycle order, engines interleaved: consecutive readings of one engine are in
    # flight at once, through both gateways (nginx round robin).
    work: queue.Queue[tuple[str, list[dict[str, Any]]]] = queue.Queue()
    for i in range(0, CYCLES, 2):
        for e, rows in series.items():
            work.put((e, rows[i:i + 2]))
    acked: dict[str, list[int]] = {e: [] for e in series}
    failures: list[str] = []
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(base_url=nginx.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
            while True:
                try:
                    e, rows = work.get_nowait()
                except queue.Empty:
                    return
                r = c.post(f"/api/v1/engines/{e}/readings", json=rows)
                with lock:
                    if r.status_code in (200, 201):
                        acked[e].extend(row["cycle"] for row in rows)
                    else:
                        failures.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:5]
    h = _history_readings(tiny_bundle)
    with httpx.Client(base_url=nginx.url, timeout=60, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        for g in gateways:  # both gateways took part
            with g.client() as gc:
                assert gc.get("/api/v1/inference").json()["calls"] > 0
        open_alerts: Counter[tuple[str, str]] = Counter()
        for e in series:
            stored = c.get(f"/api/v1/engines/{e}/readings", params={"limit": 1000}).json()
            cycles = [item["cycle"] for item in stored["items"]]
            assert cycles == sorted(set(acked[e])), f"{e}: stored {len(cycles)}, acknowledged {len(acked[e])}"
            engine = c.get(f"/api/v1/engines/{e}").json()
            assert engine["n_readings"] == len(cycles) == CYCLES
            assert engine["predicted_cycle"] == cycles[-1], engine
            committed = [{k: v for k, v in item.items() if k != "received_at"} for item in stored["items"]][-h:]
            fresh = c.post("/api/v1/predict", json={"engine_id": e, "sensor_data": committed}).json()
            assert abs(fresh["predicted_rul"] - engine["rul"]) < 2e-3, (e, fresh, engine)
            alerts = c.get("/api/v1/alerts", params={"engine_id": e, "status": "open,acknowledged",
                                                      "limit": 100}).json()["items"]
            open_alerts.update((a["engine_id"], a["kind"]) for a in alerts)
    print(f"\nopen alerts per (engine, kind): {dict(open_alerts)}")
    assert open_alerts, "the end-of-life readings should open alerts (otherwise this checks nothing)"
    assert max(open_alerts.values()) == 1, open_alerts
