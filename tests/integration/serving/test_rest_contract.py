"""The REST contract over a real socket: predictions, every bad-input case, health, metrics, models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.serving.conftest import ServeProcess
from tests.unit.serving.factory import body, readings

RESPONSE_FIELDS = {"engine_id", "predicted_rul", "lower", "upper", "confidence_level", "model_version", "status",
                   "timestamp", "last_cycle"}


def manifest(bundle: Path) -> dict[str, Any]:
    return dict(json.loads((bundle / "bundle.json").read_text()))


def test_predict_answers_the_documented_contract(rest_server: ServeProcess, tiny_bundle: Path) -> None:
    req = body(tiny_bundle, "engine-42", n=40)
    r = httpx.post(f"{rest_server.url}/api/v1/predict", json=req)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == RESPONSE_FIELDS
    assert out["engine_id"] == "engine-42" and out["last_cycle"] == req["sensor_data"][-1]["cycle"]
    assert 0 <= out["lower"] <= out["predicted_rul"] <= out["upper"] <= manifest(tiny_bundle)["rul_cap"]
    assert out["model_version"] == manifest(tiny_bundle)["version"]
    assert out["confidence_level"] == manifest(tiny_bundle)["calibration"]["level"]
    assert out["status"] in {"healthy", "warning", "critical"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", out["timestamp"])
    assert r.headers["x-request-id"]


def test_batch_keeps_order_and_matches_single_predictions(rest_server: ServeProcess, tiny_bundle: Path) -> None:
    reqs = [body(tiny_bundle, f"e{i}", n=10 + 3 * i, engine=i) for i in range(5)]
    r = httpx.post(f"{rest_server.url}/api/v1/predict/batch", json={"requests": reqs})
    assert r.status_code == 200, r.text
    out = r.json()["responses"]
    assert [o["engine_id"] for o in out] == [f"e{i}" for i in range(5)]
    single = httpx.post(f"{rest_server.url}/api/v1/predict", json=reqs[3]).json()
    assert out[3]["predicted_rul"] == single["predicted_rul"]
    assert set(out[0]) == RESPONSE_FIELDS


def _with(reading_patch: dict[str, Any], index: int = 3, drop: str | None = None) -> Any:
    def make(bundle: Path) -> dict[str, Any]:
        b = body(bundle, n=6)
        row = dict(b["sensor_data"][index], **reading_patch)
        if drop:
            del row[drop]
        b["sensor_data"][index] = row
        return b
    return make


BAD_INPUTS: list[tuple[str, Any, str]] = [
    ("missing engine_id", lambda b: {"sensor_data": readings(b, 3)}, r"^engine_id: missing"),
    ("missing sensor_data", lambda b: {"engine_id": "e"}, r"^sensor_data: missing"),
    ("missing sensor", _with({}, drop="s3"), r"^sensor_data\[3\]\.s3: missing"),
    ("null sensor", _with({"s3": None}), r"^sensor_data\[3\]\.s3: None is not a number"),
    ("unknown reading field", _with({"s99": 1.0}), r"^sensor_data\[3\]\.s99: unknown field"),
    ("unknown body field", lambda b: {**body(b, n=3), "colour": "red"}, r"^colour: unknown field"),
    ("non-number", _with({"s4": "fast"}), r"^sensor_data\[3\]\.s4: 'fast' is not a number"),
    ("boolean", _with({"s4": True}), r"^sensor_data\[3\]\.s4: True is not a number"),
    ("out of range", _with({"s4": 1e9}), r"^sensor_data\[3\]\.s4: 1e\+09 is outside the plausible range"),
    ("empty", lambda b: {"engine_id": "e", "sensor_data": []}, r"^sensor_data: is empty"),
    ("too many readings", lambda b: {"engine_id": "e", "sensor_data": readings(b, 1)[:1] * 501},
     r"^sensor_data: 501 readings exceed the limit of 500"),
    ("non-increasing cycles", _with({"cycle": 1}), r"^sensor_data\[3\]\.cycle: 1 does not increase"),
    ("readings not a list", lambda b: {"engine_id": "e", "sensor_data": {"s2": 1}}, r"^sensor_data: "),
    ("reading not an object", lambda b: {"engine_id": "e", "sensor_data": [5]}, r"^sensor_data\[0\]: "),
    ("empty engine_id", lambda b: {"engine_id": "", "sensor_data": readings(b, 3)}, r"^engine_id: "),
]


@pytest.mark.parametrize(("case", "make", "detail"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_422_naming_the_field(rest_server: ServeProcess, tiny_bundle: Path, case: str,
                                             make: Any, detail: str) -> None:
    r = httpx.post(f"{rest_server.url}/api/v1/predict", json=make(tiny_bundle))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "ValidationError"
    assert re.search(detail, r.json()["detail"]), r.json()["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(rest_server: ServeProcess, tiny_bundle: Path, literal: str) -> None:
    b = body(tiny_bundle, n=3)
    b["sensor_data"][1]["s2"] = 12345.0
    raw = json.dumps(b).replace("12345.0", literal)  # what a sloppy client's JSON encoder sends
    r = httpx.post(f"{rest_server.url}/api/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("sensor_data[1].s2: ") and "not a finite number" in r.json()["detail"]


def test_malformed_json_and_batch_errors(rest_server: ServeProcess, tiny_bundle: Path) -> None:
    r = httpx.post(f"{rest_server.url}/api/v1/predict", content=b'{"engine_id": "e", "sensor_data": [',
                   headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("body: not valid JSON")
    bad = body(tiny_bundle, "b", n=4)
    bad["sensor_data"][2]["s7"] = "x"
    r = httpx.post(f"{rest_server.url}/api/v1/predict/batch", json={"requests": [body(tiny_bundle, "a"), bad]})
    assert r.status_code == 422 and r.json()["detail"].startswith("requests[1].sensor_data[2].s7: ")
    r = httpx.post(f"{rest_server.url}/api/v1/predict/batch", json={"requests": []})
    assert r.status_code == 422 and r.json()["detail"].startswith("requests: is empty")
    r = httpx.post(f"{rest_server.url}/api/v1/predict/batch", json={"requests": [{"engine_id": "a"}]})
    assert r.status_code == 422 and r.json()["detail"] == "requests[0].sensor_data: missing (required)"


def test_health_ready_detailed_and_models(rest_server: ServeProcess, tiny_bundle: Path) -> None:
    assert httpx.get(f"{rest_server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{rest_server.url}/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == manifest(tiny_bundle)["version"]
    d = httpx.get(f"{rest_server.url}/health/detailed").json()
    assert d["status"] == "ready" and d["uptime_s"] > 0 and 10 < d["memory"]["rss_mb"] < 2000
    assert d["model"]["version"] == manifest(tiny_bundle)["version"] and d["model"]["bundle"] == tiny_bundle.name
    assert d["cpu"]["cores"] >= 1 and d["cpu"]["seconds"] > 0
    models = httpx.get(f"{rest_server.url}/api/v1/models").json()
    assert models["manifest"]["version"] == manifest(tiny_bundle)["version"]
    assert models["manifest"]["input_fields"] == manifest(tiny_bundle)["input_fields"]
    assert httpx.get(f"{rest_server.url}/openapi.json").json()["paths"]["/api/v1/predict"]["post"]


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head = line.split(" ")[0]
            if head == name or head.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


def test_metrics_count_requests_predictions_and_cache_hits(rest_server: ServeProcess, tiny_bundle: Path) -> None:
    url = rest_server.url
    before = httpx.get(f"{url}/metrics").text
    req = body(tiny_bundle, "cache-me", n=25, engine=4, start=7)
    assert httpx.post(f"{url}/api/v1/predict", json=req).status_code == 200
    assert httpx.post(f"{url}/api/v1/predict", json=req).status_code == 200  # identical window: cached
    other = body(tiny_bundle, "cache-me", n=26, engine=4, start=6)  # same last reading, longer history
    assert httpx.post(f"{url}/api/v1/predict", json=other).status_code == 200
    assert httpx.post(f"{url}/api/v1/predict", json={"engine_id": "e"}).status_code == 422
    after = httpx.get(f"{url}/metrics").text
    assert metric(after, "prognos_cache_hits_total") == metric(before, "prognos_cache_hits_total") + 1
    assert metric(after, "prognos_cache_misses_total") == metric(before, "prognos_cache_misses_total") + 2
    assert metric(after, "prognos_predictions_total") == metric(before, "prognos_predictions_total") + 3
    ok = dict(route="/api/v1/predict", method="POST", status="200")
    assert metric(after, "prognos_http_requests_total", **ok) >= 3
    assert metric(after, "prognos_http_requests_total", route="/api/v1/predict", status="422") >= 1
    assert metric(after, "prognos_http_request_duration_seconds_count", **ok) >= 3
    assert metric(after, "prognos_batch_size_count") >= 2
    assert metric(after, "prognos_queue_depth") == 0
    assert metric(after, "prognos_model_info", version=manifest(tiny_bundle)["version"]) == 1
    assert metric(after, "process_resident_memory_bytes") > 10e6
