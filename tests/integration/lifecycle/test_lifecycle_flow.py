"""The issue's lifecycle must-show, over real processes and sockets:

train v1 → register → approve → promote (``prognos models promote``) → ``prognos serve --model production`` → train v2 →
register → shadow canary (v2 scores live traffic in the background while every answer comes from
v1) → promoting the unapproved v2 is refused → approve + promote v2 (the server switches) →
rollback (it switches back) — with client load running throughout and not one failed request.
Ground truth recorded meanwhile turns stored and shadowed predictions into realised errors per
version.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from prognos.bundle import read_bundle
from prognos.data.synthetic import synthetic_fleet
from prognos.lifecycle.registry import open_registry
from tests.integration.lifecycle.server import Load, clean_env, cli, serve, wait_for
from tests.unit.serving.factory import readings


def train(readings_: Any, out: Path, seed: int) -> Path:
    pytest.importorskip("torch")
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    cfg = TrainConfig(model="cnn", model_params={"cnn": {"channels": 16, "layers": 2, "hidden": 32}}, folds=2, epochs=2,
                      patience=2, window=20, holdout=0.0, threads=1, seed=seed, serve="ensemble")
    train_bundle_from_readings(readings_, "SYNTH", out, cfg, log=lambda m: None)
    return out


def test_train_register_promote_shadow_promote_rollback(synthetic_readings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = clean_env(tmp_path, PROGNOS_REGISTRY_DIR=str(tmp_path / "registry"), PROGNOS_REGISTRY_POLL_S="0.1",
                    PROGNOS_CANARY_FRACTION="1", PROGNOS_DRIFT_INTERVAL_S="3600")

    def models(*args: str) -> str:
        res = cli(env, "models", *args)
        assert res.returncode == 0, res.stderr
        return res.stdout

    # register / approve through the registry API, promote / rollback through the one-line commands
    registry = open_registry(str(tmp_path / "registry"), tmp_path / "test-cache")
    v1 = train(synthetic_readings, tmp_path / "v1", seed=0)
    v1_name = read_bundle(v1).version
    assert registry.register(v1).version.version == 1
    registry.approve(1, actor="qa")
    assert "production: version - -> 1" in models("promote", "1")

    with serve(tmp_path, env, "--model", "production") as server, server.client() as api:
        assert api.get("/api/v1/models").json()["manifest"]["version"] == v1_name
        load = Load(server.url, v1)
        clients = [threading.Thread(target=load.run, args=(k,)) for k in range(3)]
        for t in clients:
            t.start()
        try:
            load.more(20)

            # v2: trained, registered -> the candidate; the server shadows it, answers stay v1
            v2 = train(synthetic_readings, tmp_path / "v2", seed=1)
            v2_name = read_bundle(v2).version
            assert v2_name != v1_name
            assert registry.register(v2).version.version == 2

            def shadowed() -> int:
                snap = api.get("/api/v1/models/canary").json()
                cand = snap.get("candidate") or {}
                return sum(p["n"] for p in snap["pairs"]) if cand.get("model_version") == v2_name else 0

            wait_for(lambda: shadowed() >= 30, "the candidate to score live traffic in shadow")
            snap = api.get("/api/v1/models/canary").json()
            (pair,) = snap["pairs"]
            assert (pair["production_version"], pair["candidate_version"]) == (v1_name, v2_name)
            assert pair["max_abs_diff"] > 0  # a different network: its predictions differ
            assert f'prognos_canary_candidate_info{{version="{v2_name}"}} 1.0' in api.get("/metrics").text
            mark = len(load.seen)
            load.more(30)
            assert {v for _, v in load.seen[mark:]} == {v1_name}  # answers came from production only

            # ground truth: an ingested engine (scored by v1, shadowed by v2) fails
            life = len(list(synthetic_fleet(6, seed=11).engines())[3])  # the factory's fleet: engine 3 runs to failure
            rows = readings(v1, 50, engine=3, start=life - 60)  # its readings up to 10 cycles before the end
            r = api.post("/api/v1/engines/g1/readings", json=rows)
            assert r.status_code == 201, r.text
            r = api.post("/api/v1/engines/g1/failure", json={"cycle": life})
            assert r.status_code == 201, r.text
            assert r.json()["performance"][0]["model_version"] == v1_name

            def judged() -> list[dict[str, Any]]:
                perf = api.get("/api/v1/models/performance").json()
                return [s for s in perf["shadow"] if s["n_evaluated"]]

            wait_for(judged, "the ingested engine's shadow pair to be judged against its failure")
            perf = api.get("/api/v1/models/performance").json()
            assert [v["model_version"] for v in perf["versions"]] == [v1_name] and perf["versions"][0]["n"] == 1
            (pair_truth,) = judged()
            assert (pair_truth["production_version"], pair_truth["candidate_version"]) == (v1_name, v2_name)
            assert pair_truth["n_evaluated"] == 1 and pair_truth["candidate"]["n"] == 1
            # the shadow pair holds the very answer the fleet stored: the same realised error
            assert pair_truth["production"]["rmse"] == pytest.approx(perf["versions"][0]["rmse"], abs=1e-3)

            # promoting the unapproved v2 is refused; production stays v1
            res = cli(env, "models", "promote", "2")
            assert res.returncode != 0 and "version 2 is pending approval" in res.stderr
            assert "Traceback" not in res.stderr
            load.more(20)
            assert load.latest() == v1_name

            registry.approve(2, actor="qa")
            assert "production: version 1 -> 2" in models("promote", "2")
            wait_for(lambda: load.latest() == v2_name, "the server to follow the promotion to v2")
            assert api.get("/api/v1/models").json()["manifest"]["version"] == v2_name
            wait_for(lambda: api.get("/api/v1/models/canary").json()["candidate"] is None,
                     "the canary to stop once its candidate is promoted")
            load.more(20)

            assert "production rolled back: version 2 -> 1" in models("rollback")
            wait_for(lambda: load.latest() == v1_name, "the server to follow the rollback to v1")
            assert api.get("/api/v1/models").json()["manifest"]["version"] == v1_name
            load.more(20)
        finally:
            load.stop.set()
            for t in clients:
                t.join(30)
        failed = [s for s in load.seen if s[0] != 200]
        assert not failed, failed[:5]
        # v1 -> v2 -> v1 (around a swap, concurrent clients may record old and new answers interleaved)
        changes = [v for i, (_, v) in enumerate(load.seen) if i == 0 or load.seen[i - 1][1] != v]
        assert changes[0] == v1_name and v2_name in changes and changes[-1] == v1_name, changes

