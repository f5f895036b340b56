"""Two inference replicas and one gateway as real processes: predictions go through the gateway,
a replica killed with SIGKILL under steady load costs no failed prediction (the gateway retries on
the other replica), and the replica, once back, takes traffic again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.scale.conftest import wait_for
from tests.scale.processes import Proc, env_for
from tests.unit.serving.factory import readings


@pytest.fixture
def tier(tmp_path: Path, tiny_bundle: Path) -> Iterator[tuple[Proc, Proc, Proc]]:
    replicas = [Proc(f"inference-{i}", tmp_path / f"inference-{i}", ["--role", "inference", "--bundle",
                                                                       str(tiny_bundle)], env_for(tmp_path / f"i{i}"))
                for i in (1, 2)]
    gateway = Proc("gateway", tmp_path / "gateway", ["--role", "gateway", "--inference",
                                                     ",".join(r.grpc_address for r in replicas)],
                   env_for(tmp_path / "gw", PROGNOS_INFERENCE_HEALTH_INTERVAL_S="0.3",
                           PROGNOS_INFERENCE_TIMEOUT_S="2"))
    procs = [*replicas, gateway]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready()
        yield replicas[0], replicas[1], gateway
    finally:
        for p in procs:
            p.stop()


def _pool(gateway: Proc) -> dict:  # type: ignore[type-arg]
    with gateway.client() as c:
        return c.get("/api/v1/inference").json()  # type: ignore[no-any-return]


def test_sigkill_of_a_replica_under_load_fails_no_prediction(tier: tuple[Proc, Proc, Proc], tiny_bundle: Path
                                                             ) -> None:
    victim, _survivor, gateway = tier
    assert not list((victim.env_dir()).glob("*.db")), "an inference replica opens no database"
    body = {"engine_id": "load-0", "sensor_data": readings(tiny_bundle, 40, engine=0)}
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(k: int) -> None:
        with gateway.client() as c:
            while not stop.is_set():
                try:
                    r = c.post("/api/v1/predict", json=dict(body, engine_id=f"load-{k}"))
                    outcome = (r.status_code, r.json().get("model_version", r.text))
                except httpx.HTTPError as exc:
                    outcome = (0, repr(exc))
                with lock:
                    seen.append(outcome)

    def count() -> int:
        with lock:
            return len(seen)

    workers = [threading.Thread(target=load, args=(k,), daemon=True) for k in range(3)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: count() >= 60, "60 predictions through the gateway")
        both = _pool(gateway)
        assert all(r["served"] > 0 for r in both["replicas"]), both  # round robin uses both replicas

        victim.kill()  # SIGKILL under load
        mark = count()
        wait_for(lambda: count() >= mark + 150, "150 more predictions after the SIGKILL")
        after_kill = _pool(gateway)
        assert [r["healthy"] for r in after_kill["replicas"]] == [False, True], after_kill

        victim.start()  # the replica comes back on the same address
        wait_for(lambda: _pool(gateway)["replicas"][0]["healthy"], "the gateway to see the replica back", 90)
        served_before = _pool(gateway)["replicas"][0]["served"]
        wait_for(lambda: _pool(gateway)["replicas"][0]["served"] > served_before + 20,
                 "the returned replica to take traffic again")
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    final = _pool(gateway)
    failed = [s for s in seen if s[0] != 200]
    print(f"\npredictions: {len(seen)}, failed: {len(failed)}, retried on the other replica: {final['retried']}, "
          f"gateway pool failures: {final['failed']}")
    assert not failed, failed[:5]
    assert final["failed"] == 0
    assert final["retried"] >= 0
    version = {v for _, v in seen}
    assert version == set(final["model_versions"]), "every answer names the model version that produced it"


def test_503_with_retry_after_only_when_no_replica_can_serve(tier: tuple[Proc, Proc, Proc], tiny_bundle: Path
                                                              ) -> None:
    first, second, gateway = tier
    body = {"engine_id": "e-1", "sensor_data": readings(tiny_bundle, 30, engine=1)}
    with gateway.client() as c:
        assert c.post("/api/v1/predict", json=body).status_code == 200
        first.kill()
        assert c.post("/api/v1/predict", json=body).status_code == 200  # the other replica answers
        second.kill()
        r = c.post("/api/v1/predict", json=body)
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert "no inference replica can serve" in r.json()["detail"]
        bad = c.post("/api/v1/predict", json={"engine_id": "e-1", "sensor_data": [{"cycle": 1}]})
        assert bad.status_code == 422  # bad input is still the caller's error, judged on the gateway
        wait_for(lambda: c.get("/ready").status_code == 503, "the gateway to report not ready")
