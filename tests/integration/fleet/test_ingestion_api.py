"""Ingestion over real HTTP (uvicorn on 127.0.0.1) into SQLite and a real PostgreSQL 15."""

from __future__ import annotations

import concurrent.futures

import pytest

from prognos.config import Settings
from prognos.data.schema import SENSOR_FIELDS
from prognos.data.synthetic import synthetic_fleet
from prognos.serving.service import PredictionService
from tests.helpers import cmapss_text
from tests.integration.fleet.conftest import LiveApp, start_live_app
from tests.integration.fleet.readings import engine_readings


def test_ingest_list_then_single_object_scores_and_stores(live: LiveApp) -> None:
    rows = engine_readings()
    with live.client(live.key("operator")) as c:
        r = c.post("/api/v1/engines/e-1/readings", json=rows[:50])
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["accepted"], body["duplicates"]) == (50, 0)
        [p] = body["predictions"]
        assert p["engine_id"] == "e-1" and p["cycle"] == 50 and p["lower"] <= p["rul"] <= p["upper"]
        assert p["model_version"] == live.service.model_version
        r = c.post("/api/v1/engines/e-1/readings", json=rows[50])  # one object, not a list
        assert r.status_code == 201 and r.json()["predictions"][0]["cycle"] == 51
        engine = c.get("/api/v1/engines/e-1").json()
    assert engine["last_cycle"] == 51 and engine["n_readings"] == 51
    assert engine["latest_prediction"]["cycle"] == 51 and engine["predicted_cycle"] == 51
    assert engine["status"] in ("healthy", "warning", "critical") and engine["last_update"].endswith("Z")


def test_identical_resend_is_counted_not_stored_and_conflict_is_409(live: LiveApp) -> None:
    rows = engine_readings()[:20]
    with live.client(live.key("operator")) as c:
        assert c.post("/api/v1/engines/e1/readings", json=rows).status_code == 201
        again = c.post("/api/v1/engines/e1/readings", json=rows[10:])
        assert again.status_code == 200 and (again.json()["accepted"], again.json()["duplicates"]) == (0, 10)
        changed = [dict(rows[18]), dict(rows[19], s4=rows[19]["s4"] + 1.0), {**rows[19], "cycle": 21}]
        conflict = c.post("/api/v1/engines/e1/readings", json=changed)
        assert conflict.status_code == 409
        assert conflict.json()["error"] == "ConflictError"
        assert "'e1'" in conflict.json()["detail"] and "cycle 20" in conflict.json()["detail"]
        stored = c.get("/api/v1/engines/e1/readings", params={"limit": 5, "offset": 18}).json()
    assert stored["total"] == 20  # cycle 21 of the refused batch was not stored either
    assert [r["cycle"] for r in stored["items"]] == [19, 20] and stored["items"][1]["s4"] == rows[19]["s4"]


def test_concurrent_resends_of_one_batch_store_it_once(live: LiveApp) -> None:
    rows = engine_readings()[:40]
    key = live.key("operator")

    def send(_: int) -> int:
        with live.client(key) as c:
            return c.post("/api/v1/engines/race/readings", json=rows).json()["accepted"]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        accepted = list(pool.map(send, range(6)))
    assert sum(accepted) == 40
    with live.client() as c:
        assert c.get("/api/v1/engines/race/readings").json()["total"] == 40


FULL = engine_readings()[0]
NO_CYCLE = {k: v for k, v in FULL.items() if k != "cycle"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the validator does not touch the database
@pytest.mark.parametrize(("payload", "field"), [
    ([NO_CYCLE, NO_CYCLE], "readings[0].cycle"),
    ([dict(FULL, s2="hot")], "readings[0].s2"),
    ([dict(FULL, s99=1.0)], "readings[0].s99"),
    ([FULL, FULL], "readings[1].cycle"),
    ([], "readings"),
    ("not a list", "readings"),
])
def test_bad_readings_are_422_naming_the_field(live: LiveApp, payload: object, field: str) -> None:
    with live.client(live.key("operator")) as c:
        r = c.post("/api/v1/engines/e1/readings", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(field)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_invalid_json_and_engine_id_are_422(live: LiveApp) -> None:
    with live.client(live.key("operator")) as c:
        r = c.post("/api/v1/engines/e1/readings", content=b"[{", headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["detail"].startswith("body: not valid JSON")
        r = c.post("/api/v1/engines/-bad%20id/readings", json=engine_readings()[:1])
        assert r.status_code == 422 and r.json()["detail"].startswith("engine_id")


def test_implausible_or_incomplete_batches_are_refused_and_open_data_quality_alerts(live: LiveApp) -> None:
    rows = engine_readings()[:30]
    spec = live.service.predictor.spec
    name = next(f for f in spec.required if f in SENSOR_FIELDS and f in spec.ranges)
    with live.client(live.key("operator")) as c:
        assert c.post("/api/v1/engines/e1/readings", json=rows[:29]).status_code == 201
        bad = dict(rows[29], **{name: spec.ranges[name][1] * 10})
        r = c.post("/api/v1/engines/e1/readings", json=[bad])
        assert r.status_code == 422 and name in r.json()["detail"]
        [alert] = c.get("/api/v1/alerts", params={"engine_id": "e1", "kind": "out_of_range"}).json()["items"]
        assert alert["status"] == "open" and name in alert["message"]
        lacking = {k: v for k, v in rows[29].items() if k != name}
        r = c.post("/api/v1/engines/e1/readings", json=[lacking])
        assert r.status_code == 422 and f"{name}: missing" in r.json()["detail"]
        [missing] = c.get("/api/v1/alerts", params={"engine_id": "e1", "kind": "missing_sensor"}).json()["items"]
        assert missing["status"] == "open" and missing["severity"] == "warning"
        # a client bug (not a number) is refused without a data-quality alert
        assert c.post("/api/v1/engines/e1/readings", json=[dict(rows[29], s2="n/a")]).status_code == 422
        assert c.get("/api/v1/alerts", params={"engine_id": "e1"}).json()["total"] == 2
        assert c.post("/api/v1/engines/e1/readings", json=[rows[29]]).status_code == 201  # good data again
        after = [c.get(f"/api/v1/alerts/{a['id']}").json() for a in (alert, missing)]
    assert all(a["status"] == "resolved" and a["resolved_by"] == "auto" for a in after)


def test_file_uploads_cmapss_text_and_csv(live: LiveApp) -> None:
    fleet = synthetic_fleet(3, seed=11)
    text = cmapss_text(fleet)
    with live.client(live.key("operator")) as c:
        r = c.post("/api/v1/readings/upload", params={"engine_prefix": "u"},
                   files={"file": ("train_FD001.txt", text.encode(), "text/plain")})
        assert r.status_code == 201, r.text
        assert r.json()["accepted"] == len(fleet) and len(r.json()["predictions"]) == 3
        again = c.post("/api/v1/readings/upload", params={"engine_prefix": "u"},
                       files={"file": ("train_FD001.txt", text.encode(), "text/plain")})
        assert again.status_code == 200 and again.json()["duplicates"] == len(fleet)
        one = next(fleet.engines())
        csv = "unit,cycle,s2,s3\n" + "".join(f"1,{int(cy)},{v[4]},{v[5]}\n" for cy, v in
                                                   zip(one.cycles[:5], one.values[:5], strict=True))
        r = c.post("/api/v1/engines/csv-1/readings/upload", files={"file": ("one.csv", csv.encode(), "text/csv")})
        # the tiny model needs more sensors than s2/s3: the one validator names the first missing one
        assert r.status_code == 422 and "missing" in r.json()["detail"] and "one.csv" in r.json()["detail"]
        r = c.post("/api/v1/engines/x/readings/upload", files={"file": ("two.txt", text.encode(), "text/plain")})
        assert r.status_code == 422 and "3 engines" in r.json()["detail"]
        engines = c.get("/api/v1/engines", params={"q": "u", "sort": "engine_id"}).json()
    assert [e["engine_id"] for e in engines["items"]] == ["u1", "u2", "u3"]
    assert all(e["rul"] is not None for e in engines["items"])


def test_engines_listing_readings_paging_and_predictions_history(live: LiveApp) -> None:
    rows = engine_readings()
    with live.client(live.key("operator")) as c:
        for i in range(0, 60, 20):
            c.post("/api/v1/engines/e1/readings", json=rows[i:i + 20]).raise_for_status()
        c.post("/api/v1/engines/e2/readings", json=rows[:5]).raise_for_status()
        c.put("/api/v1/engines/e2", json={"tags": {"site": "TLS"}, "model_family": "cfm56"}).raise_for_status()
        page = c.get("/api/v1/engines/e1/readings", params={"limit": 7, "offset": 7}).json()
        assert page["total"] == 60 and [r["cycle"] for r in page["items"]] == list(range(8, 15))
        newest = c.get("/api/v1/engines/e1/readings", params={"limit": 2, "order": "desc"}).json()
        assert [r["cycle"] for r in newest["items"]] == [60, 59]
        history = c.get("/api/v1/engines/e1/predictions").json()
        assert [p["cycle"] for p in history["items"]] == [20, 40, 60]
        by_cycle = c.get("/api/v1/engines", params={"sort": "-last_cycle"}).json()["items"]
        assert [e["engine_id"] for e in by_cycle] == ["e1", "e2"]
        assert c.get("/api/v1/engines", params={"q": "cfm"}).json()["items"][0]["tags"] == {"site": "TLS"}
        assert c.get("/api/v1/engines", params={"sort": "colour"}).status_code == 422
        assert c.get("/api/v1/engines/nope").status_code == 404
        assert c.get("/api/v1/engines/nope/readings").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ingestion_works_without_a_model_and_scores_once_one_is_loaded(fleet_settings: Settings,
                                                                       service: PredictionService) -> None:
    app = start_live_app(fleet_settings, PredictionService(fleet_settings))  # nothing loaded yet
    rows = engine_readings()
    try:
        with app.client(app.key("operator")) as c:
            needed = service.predictor.spec.required[-1]
            partial = [{k: v for k, v in r.items() if k != needed} for r in rows[:10]]  # a model input missing
            r = c.post("/api/v1/engines/e1/readings", json=partial)
            assert r.status_code == 201 and r.json()["predictions"] == []
            assert "no model" in r.json()["prediction_error"]
            app.service.use(service.predictor)  # the model finished loading
            r = c.post("/api/v1/engines/e1/readings", json=rows[10:20])
            [p] = r.json()["predictions"]
            # scored on the complete readings only: the same as a model that never saw cycles 1-10
            alone = service.predictor.predict_sequences(["e1"], [service.predictor.validate(rows[10:20])])[0]
            assert p["cycle"] == 20 and p["rul"] == pytest.approx(alone.rul)
            assert c.get("/api/v1/engines/e1/readings").json()["total"] == 20
    finally:
        app.stop()
