"""Drift monitoring that does not cry wolf: C-MAPSS engines replayed into a real ``prognos serve``
(fleet app on SQLite) cycle by cycle, the server's drift job running every second.

* The demo's young fleet — the first 60 cycles of 40 FD001 test engines, one reading per request —
  through an FD001 model: no drift verdict at any check and no drift alert, although the same
  sample against all training windows reached PSI ~1.9 and KS ~0.36 (the false alarm this guards).
* FD003 test engines (a second fault mode) through the same model: a drift alert opens.
* Neither leaves a pseudo-engine in ``/api/v1/engines``: drift belongs to the model version.

Skipped without the C-MAPSS files. About a minute on a quiet machine (most of it the replay).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from prognos.bundle import read_bundle
from prognos.data.cmapss import EngineSeries, load_readings
from prognos.data.schema import MEASUREMENT_FIELDS
from tests.integration.lifecycle.server import Server, clean_env, serve, wait_for

pytestmark = pytest.mark.cmapss

ENGINES, CYCLES = 40, 60


def rows(engine: EngineSeries, fields: list[str]) -> list[dict[str, Any]]:
    cols = [MEASUREMENT_FIELDS.index(f) for f in fields]
    return [{"cycle": int(c), **{f: float(v[i]) for f, i in zip(fields, cols, strict=True)}}
            for c, v in zip(engine.cycles, engine.values, strict=True)]


@pytest.fixture
def live(fd001_bundle: Path, tmp_path: Path) -> Iterator[tuple[Server, httpx.Client]]:
    # Every prediction captured and drift checked every second: the demo's setting (10 %, 60 s) only
    # sees the same thing later and less often.
    env = clean_env(tmp_path, PROGNOS_DRIFT_SAMPLE_RATE="1", PROGNOS_DRIFT_INTERVAL_S="1",
                    PROGNOS_DRIFT_BUFFER_SIZE="10000", PROGNOS_CACHE_SIZE="0")
    with serve(tmp_path, env, "--bundle", str(fd001_bundle)) as server, server.client() as client:
        yield server, client


def replay(client: httpx.Client, engines: dict[str, list[dict[str, Any]]], per_request: int,
           watch: list[dict[str, Any]]) -> int:
    """Post every engine's readings ``per_request`` at a time, the engines advancing together (as a
    fleet does); the drift report is read after each round into ``watch``. Returns requests sent."""
    sent = 0
    rounds = max(len(r) for r in engines.values())

    def post(item: tuple[str, list[dict[str, Any]]]) -> None:
        r = client.post(f"/api/v1/engines/{item[0]}/readings", json=item[1])
        assert r.status_code == 201, r.text

    with ThreadPoolExecutor(4) as pool:
        for start in range(0, rounds, per_request):
            batch = [(eid, r[start:start + per_request]) for eid, r in engines.items() if start < len(r)]
            list(pool.map(post, batch))
            sent += len(batch)
            watch.append(client.get("/api/v1/models/drift").json())
    return sent


def settled_report(client: httpx.Client, n: int) -> dict[str, Any]:
    """The first drift report computed over all ``n`` captured predictions."""
    wait_for(lambda: client.get("/api/v1/models/drift").json().get("n_samples", 0) >= n,
             f"a drift check over all {n} predictions", timeout_s=60)
    body: dict[str, Any] = client.get("/api/v1/models/drift").json()
    return body


def engine_ids(client: httpx.Client) -> set[str]:
    page = client.get("/api/v1/engines", params={"limit": 1000}).json()
    return {e["engine_id"] for e in page["items"]}


def test_a_young_fd001_fleet_raises_no_drift_alert(live: tuple[Server, httpx.Client], fd001_bundle: Path,
                                                   cmapss: Path) -> None:
    _, client = live
    fields = read_bundle(fd001_bundle).manifest.input_fields
    test = list(load_readings(cmapss / "test_FD001.txt").engines())[:ENGINES]
    fleet = {f"fd001-{e.engine_id}": rows(e, fields)[:CYCLES] for e in test}
    n = sum(len(r) for r in fleet.values())
    assert n >= 0.9 * ENGINES * CYCLES  # nearly every test engine has 60 cycles
    watch: list[dict[str, Any]] = []
    assert replay(client, fleet, 1, watch) == n  # one reading per request

    report = settled_report(client, n)
    assert report["status"] == "ok", report["message"]
    assert report["n_drifted"] == 0 and report["stratified"] and report["n_engines"] == ENGINES
    assert max(q["ks"] for q in report["features"]) < report["thresholds"]["ks_effect"]
    assert not report["prediction"]["drifted"]
    # the evidence the models page shows: per-stage samples against training rows at the same cycles
    assert report["stages"] and report["stages"][0]["stage"].startswith("cycles 1-")
    assert sum(s["n"] for s in report["stages"]) == n
    # no check during the replay said drift (the young fleet at 1, 2, ... 60 cycles), and no alert
    statuses = {w.get("status") for w in watch}
    assert "drift" not in statuses and statuses & {"ok", "insufficient"}, statuses
    alerts = client.get("/api/v1/alerts", params={"kind": "drift"}).json()
    assert alerts["total"] == 0, alerts
    assert engine_ids(client) == set(fleet)  # no pseudo-engine


def test_fd003_engines_raise_a_drift_alert_on_the_model(live: tuple[Server, httpx.Client], fd001_bundle: Path,
                                                       cmapss: Path) -> None:
    _, client = live
    bundle = read_bundle(fd001_bundle)
    test = list(load_readings(cmapss / "test_FD003.txt").engines())[:ENGINES]
    ranges = bundle.manifest.input_ranges

    def plausible(r: dict[str, Any]) -> bool:  # what the validator would refuse (422) is not drift
        return all(lo <= r[f] <= hi for f, (lo, hi) in ranges.items())

    fleet = {f"fd003-{e.engine_id}": [r for r in rows(e, bundle.manifest.input_fields) if plausible(r)]
             for e in test}
    assert sum(len(r) for r in fleet.values()) > 0.8 * sum(len(e) for e in test)  # ~9 % refused
    n = replay(client, fleet, 10, [])  # whole records, 10 readings per request: one prediction each

    report = settled_report(client, n)
    assert report["status"] == "drift" and report["stratified"], report["message"]
    assert report["n_drifted"] >= report["min_drifted"]

    def open_drift() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = client.get("/api/v1/alerts", params={"kind": "drift", "status": "open"}
                                                 ).json()["items"]
        return items

    wait_for(open_drift, "the drift alert", timeout_s=30)
    alert = open_drift()[0]
    assert bundle.version in alert["message"]
    # raised by the first check that saw enough: a drifted subset of the model's features
    assert len(alert["details"]["drifted_features"]) >= report["min_drifted"]
    assert set(alert["details"]["drifted_features"]) <= {q["name"] for q in report["features"]}
    assert engine_ids(client) == set(fleet)  # the alert belongs to the model, not to an engine
