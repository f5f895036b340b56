"""Ground truth: recording failures (validation, idempotency, conflicts), realised errors per model
version, shadow pairs judged on the same requests, bounded shadow storage — on a real SQLite
database — and the REST route and CLI over the same code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prognos.config import get_settings
from prognos.errors import ConflictError, NotFoundError, ValidationError
from prognos.fleet import open_store
from prognos.fleet.records import EngineScore, PredictionRecord, ReadingBatch
from prognos.fleet.store import FleetStore
from prognos.lifecycle.feedback import (
    ShadowPair,
    model_performance,
    prune_shadow,
    record_failure,
    save_shadow,
)
from prognos.metrics import phm08_score


@pytest.fixture
def store(tmp_path: Path) -> FleetStore:
    s = open_store(get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}"))
    yield s
    s.db.dispose()


def _readings(store: FleetStore, engine_id: str, last_cycle: int) -> None:
    cycles = np.arange(1, last_cycle + 1, dtype=np.int64)
    store.add_readings([ReadingBatch(engine_id, cycles, np.full((len(cycles), 24), 1.0))])


def _predict(store: FleetStore, engine_id: str, version: str, cycles_rul: list[tuple[int, float]]) -> None:
    store.save_scores([EngineScore(engine_id, c, PredictionRecord(engine_id, c, r, r - 10, r + 10, 0.9, "healthy",
                                                                  version), {}) for c, r in cycles_rul])


def test_realised_errors_per_model_version(store: FleetStore) -> None:
    _readings(store, "e1", 150)
    _readings(store, "e2", 100)
    # e1 fails at 200: true RUL at cycle p is 200 - p (capped at 125 for the capped figures)
    _predict(store, "e1", "v1", [(50, 120.0), (100, 90.0), (150, 40.0)])
    _predict(store, "e1", "v2", [(150, 55.0)])
    _predict(store, "e2", "v1", [(80, 30.0)])  # e2 has not failed: not judged

    result = record_failure(store, "e1", 200, "op", rul_cap=125.0)
    assert result.created and result.failure.cycle == 200 and result.failure.recorded_by == "op"
    by_version = {p.model_version: p for p in result.performance}
    assert set(by_version) == {"v1", "v2"}

    pred, true = np.array([120.0, 90.0, 40.0]), np.array([150.0, 100.0, 50.0])
    capped = np.minimum(true, 125.0)
    v1 = by_version["v1"].errors
    assert v1.n == 3 and by_version["v1"].n_engines == 1
    assert v1.rmse == pytest.approx(np.sqrt(np.mean((pred - capped) ** 2)))
    assert v1.rmse_uncapped == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert v1.score == pytest.approx(phm08_score(pred, capped))
    assert v1.mean_error == pytest.approx(np.mean(pred - capped))
    assert by_version["v2"].errors.rmse == pytest.approx(5.0)  # 55 vs true 50: late by 5

    report = model_performance(store, 125.0)
    assert report.n_failures == 1
    assert [v.model_version for v in report.versions] == ["v1", "v2"]
    assert report.versions[0].errors.n == 3  # e2's prediction waits for its failure

    # the second engine's failure adds its predictions
    record_failure(store, "e2", 110, "op")
    v1_all = {v.model_version: v for v in model_performance(store, 125.0).versions}["v1"]
    assert v1_all.errors.n == 4 and v1_all.n_engines == 2


def test_failure_input_is_checked(store: FleetStore) -> None:
    _readings(store, "e1", 150)
    with pytest.raises(NotFoundError, match="engine 'ghost' not found"):
        record_failure(store, "ghost", 10, "op")
    for bad in (0, -3, 2.5, "12", True, None):
        with pytest.raises(ValidationError, match=r"^cycle: "):
            record_failure(store, "e1", bad, "op")
    with pytest.raises(ValidationError, match=r"cycle: 120 is before engine 'e1'.s last reading at cycle 150"):
        record_failure(store, "e1", 120, "op")

    assert record_failure(store, "e1", 160, "alice").created
    again = record_failure(store, "e1", 160, "bob")  # an identical resend changes nothing
    assert not again.created and again.failure.recorded_by == "alice"
    with pytest.raises(ConflictError, match="failure at cycle 160 is already recorded"):
        record_failure(store, "e1", 170, "bob")


def test_shadow_pairs_are_judged_on_the_same_requests_and_bounded(store: FleetStore) -> None:
    _readings(store, "e1", 100)
    pairs = [ShadowPair("e1", 80, "v1", 30.0, "v2", 25.0), ShadowPair("e1", 90, "v1", 15.0, "v2", 12.0),
             ShadowPair("e1", None, "v1", 50.0, "v2", 40.0),  # no cycle: counted, never judged
             ShadowPair("api-only", 5, "v1", 100.0, "v2", 90.0)]  # an engine the fleet does not know
    assert save_shadow(store, pairs) == 4
    before = model_performance(store)
    assert [(s.n_pairs, s.n_evaluated, s.production) for s in before.shadow] == [(4, 0, None)]

    record_failure(store, "e1", 100, "op")
    (shadow,) = model_performance(store).shadow
    assert (shadow.production_version, shadow.candidate_version) == ("v1", "v2")
    assert shadow.n_evaluated == 2
    assert shadow.production is not None and shadow.candidate is not None
    assert shadow.production.rmse == pytest.approx(np.sqrt((10**2 + 5**2) / 2))  # true 20, 10
    assert shadow.candidate.rmse == pytest.approx(np.sqrt((5**2 + 2**2) / 2))

    save_shadow(store, [ShadowPair("e1", c, "v1", 1.0, "v2", 1.0) for c in range(10)])
    assert prune_shadow(store, 5) == 9 and prune_shadow(store, 5) == 0
    assert model_performance(store).shadow[0].n_pairs == 5


# --- the REST route and the CLI share record_failure -----------------------------------------------


def test_failure_route_and_performance_route(tmp_path: Path, tiny_bundle: Path) -> None:
    from prognos.assembly import fleet_hooks, merge_hooks
    from prognos.fleet import build_fleet
    from prognos.fleet.keys import KeyStore
    from prognos.lifecycle.monitoring import lifecycle_hooks
    from prognos.serving.hooks import ServerHooks
    from prognos.serving.http import create_app
    from prognos.serving.service import PredictionService, load_predictor
    from tests.unit.serving.asgi import call

    settings = get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}", data_dir=tmp_path / "data",
                            admin_token="adm")
    service = PredictionService(settings, load_predictor(tiny_bundle, settings))
    fleet = build_fleet(settings, service)
    hooks = merge_hooks(fleet_hooks(settings, fleet),
                        lifecycle_hooks(settings, ServerHooks(), service=service, fleet=fleet))
    app = create_app(settings, service, fleet.authenticator, hooks.routers)
    for configure in hooks.configure_app:
        configure(app)
    viewer = KeyStore(fleet.store).create("viewer", "v").secret
    operator = KeyStore(fleet.store).create("operator", "o").secret
    _readings(fleet.store, "e7", 40)
    _predict(fleet.store, "e7", "v1", [(40, 50.0)])

    def post(body: object, key: str = operator, engine: str = "e7"):  # type: ignore[no-untyped-def]
        return call(app, "POST", f"/api/v1/engines/{engine}/failure", json=body,
                    headers={"Authorization": f"Bearer {key}"})

    assert post({"cycle": 90}, key=viewer).status_code == 403
    r = post({"cycle": "soon"})
    assert r.status_code == 422 and r.json()["detail"].startswith("cycle:")
    assert post({"cycle": 90, "by": "x"}).status_code == 422
    assert post({}).json()["detail"] == "cycle: missing (required)"
    assert post({"cycle": 90}, engine="nope").status_code == 404
    assert post({"cycle": 10}).status_code == 422  # before its last reading
    r = post({"cycle": 90})
    assert r.status_code == 201, r.text
    assert r.json()["performance"][0]["rmse"] == pytest.approx(0.0)  # 50 at cycle 40, failed at 90
    assert post({"cycle": 90}).status_code == 200
    assert post({"cycle": 91}).status_code == 409

    perf = call(app, "GET", "/api/v1/models/performance", headers={"Authorization": f"Bearer {viewer}"})
    assert perf.status_code == 200
    body = perf.json()
    assert body["n_failures"] == 1 and body["rul_cap"] == service.manifest.rul_cap
    assert body["versions"][0]["model_version"] == "v1" and body["canary"] is None
    assert call(app, "GET", "/api/v1/models/performance").status_code == 401
    fleet.store.db.dispose()


def test_failure_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from prognos.cli import app

    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    monkeypatch.setenv("PROGNOS_DATABASE_URL", url)
    s = open_store(get_settings(database_url=url))
    _readings(s, "e9", 30)
    _predict(s, "e9", "v3", [(30, 25.0)])
    runner = CliRunner()
    res = runner.invoke(app, ["failure", "e9", "--cycle", "50", "--by", "ops"])
    assert res.exit_code == 0, res.output
    assert "engine e9 failed at cycle 50 (recorded)" in res.output
    assert "v3: 1 predictions  RMSE 5.00" in res.output  # 25 predicted, 20 true
    res = runner.invoke(app, ["failure", "e9", "--cycle", "50"])
    assert "already recorded by ops" in res.output
    s.db.dispose()


def test_concurrent_records_of_one_failure_create_it_once(store: FleetStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _readings(store, "e1", 10)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: record_failure(store, "e1", 20, f"op{k}"), range(8)))
    assert sum(r.created for r in results) == 1
    assert len({r.failure.recorded_by for r in results}) == 1  # everyone sees the one stored record
