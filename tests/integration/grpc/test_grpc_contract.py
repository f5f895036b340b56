"""The RulService contract over a real socket: PredictRUL, BatchPredictRUL, StreamPredictRUL,
IngestReadings; responses carry the REST response's fields and values."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from prognos.errors import ModelUnavailableError, ValidationError
from prognos.serving.grpc.client import RulPrediction
from prognos.serving.grpc.messages import reading_messages
from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc
from prognos.serving.service import PredictionService

REST_RESPONSE_FIELDS = {"engine_id", "predicted_rul", "lower", "upper", "confidence_level", "model_version", "status",
                        "timestamp", "last_cycle"}


def in_process(service: PredictionService, engine_id: str, readings: list[dict[str, Any]]) -> dict[str, Any]:
    """What the REST API would answer (the service's body), without the timestamp."""
    body = asyncio.run(service.predict(engine_id, readings)).to_dict()
    body.pop("timestamp")
    return body


def wait_until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


def without_timestamp(p: RulPrediction) -> dict[str, Any]:
    d = p.to_dict()
    d.pop("timestamp")
    return d


def test_predict_answers_the_rest_body(shared_server, engines, predictor):
    body = engines[0]
    readings = body["sensor_data"][:40]
    with shared_server.client() as client:
        p = client.predict(body["engine_id"], readings)
    assert set(p.to_dict()) == REST_RESPONSE_FIELDS
    assert p.engine_id == body["engine_id"]
    assert p.model_version == predictor.version
    assert p.last_cycle == readings[-1]["cycle"]
    assert p.lower <= p.predicted_rul <= p.upper
    assert p.timestamp.endswith("Z")
    reference = PredictionService(shared_server.settings, predictor)
    assert without_timestamp(p) == in_process(reference, body["engine_id"], readings)


def test_json_form_of_the_messages_is_the_rest_body(shared_server, engines):
    rest_body = {"engine_id": engines[1]["engine_id"], "sensor_data": engines[1]["sensor_data"][:5]}
    request = json_format.Parse(json.dumps(rest_body), rul_pb2.PredictRULRequest())
    # JSON out of the message (default options: json_name) is the REST body again, key for key.
    assert json_format.MessageToDict(request) == rest_body
    with grpc.insecure_channel(shared_server.target) as channel:
        response = rul_pb2_grpc.RulServiceStub(channel).PredictRUL(request, timeout=5)
    assert set(json_format.MessageToDict(response)) == REST_RESPONSE_FIELDS


def test_batch_is_one_model_call_in_request_order(grpc_server, engines, predictor):
    server = grpc_server(predictor, cache_size=0)
    bodies = [{"engine_id": b["engine_id"], "sensor_data": b["sensor_data"][:30]} for b in engines[:5]]
    before = server.service.batcher.stats.batches
    with server.client() as client:
        batch = client.batch_predict(bodies)
        assert server.service.batcher.stats.batches == before + 1
        assert [p.engine_id for p in batch] == [b["engine_id"] for b in bodies]
        singles = [client.predict(b["engine_id"], b["sensor_data"]) for b in bodies]
    assert [without_timestamp(p) for p in batch] == [without_timestamp(p) for p in singles]


def test_batch_limits(grpc_server, engines, predictor):
    server = grpc_server(predictor, max_batch_requests=2)
    body = {"engine_id": "e", "sensor_data": engines[0]["sensor_data"][:3]}
    with server.client() as client:
        with pytest.raises(ValidationError, match=r"^requests: 3 requests exceed the limit of 2"):
            client.batch_predict([body] * 3)
        with pytest.raises(ValidationError, match=r"^requests: is empty"):
            client.batch_predict([])
        field = server.service.predictor.spec.required[-1]
        bad = {"engine_id": "e",
               "sensor_data": [{k: v for k, v in r.items() if k != field} for r in body["sensor_data"]]}
        with pytest.raises(ValidationError, match=rf"^requests\[1\]\.sensor_data\[0\]\.{field}: missing"):
            client.batch_predict([body, bad])


def test_stream_answers_each_reading_with_the_prediction_on_the_history(shared_server, engines):
    """Two engines interleaved cycle by cycle: each answer equals PredictRUL on all readings so far."""
    a, b = engines[2], engines[3]
    n = 25
    requests = []
    for i in range(n):
        requests.append({"engine_id": a["engine_id"], "sensor_data": [a["sensor_data"][i]]})
        requests.append({"engine_id": b["engine_id"], "sensor_data": [b["sensor_data"][i]]})
    with shared_server.client() as client:
        updates = list(client.stream(requests, timeout_s=30))
        assert len(updates) == 2 * n
        assert all(u.error is None and u.prediction is not None for u in updates)
        for i in (0, 1, 10, n - 1):
            for k, body in enumerate((a, b)):
                got = updates[2 * i + k].prediction
                assert got is not None and got.engine_id == body["engine_id"] and got.last_cycle == i + 1
                expected = client.predict(body["engine_id"], body["sensor_data"][: i + 1])
                assert got.predicted_rul == expected.predicted_rul
                assert (got.lower, got.upper) == (expected.lower, expected.upper)


def test_stream_reports_a_bad_request_and_goes_on(shared_server, engines, predictor):
    a = engines[4]
    r = a["sensor_data"]
    field = predictor.spec.required[0]
    bad = {k: v for k, v in r[1].items() if k != field}
    with shared_server.client() as client:
        updates = list(client.stream([
            {"engine_id": a["engine_id"], "sensor_data": [r[0]]},
            {"engine_id": a["engine_id"], "sensor_data": [bad]},  # missing a required field: dropped
            {"engine_id": a["engine_id"], "sensor_data": [r[0]]},  # cycle 1 again: does not increase
            {"engine_id": a["engine_id"], "sensor_data": [r[1], r[2]]},
            {"engine_id": "", "sensor_data": [r[3]]},
        ], timeout_s=30))
    assert [u.error is None for u in updates] == [True, False, False, True, False]
    assert isinstance(updates[1].error, ValidationError)
    assert str(updates[1].error).startswith(f"sensor_data[0].{field}: missing")
    assert str(updates[2].error).startswith("sensor_data[0].cycle: 1 does not increase (previous is 1)")
    assert updates[3].prediction is not None and updates[3].prediction.last_cycle == 3
    assert str(updates[4].error).startswith("engine_id: missing")


def test_stream_memory_is_bounded(grpc_server, engines, predictor):
    """History per engine keeps the last grpc_stream_history readings; engines beyond
    grpc_stream_max_engines are forgotten, least recently updated first."""
    keep = predictor.window
    server = grpc_server(predictor, grpc_stream_history=keep, grpc_stream_max_engines=2)
    a, b, c = engines[5], engines[6], engines[7]
    n = keep + 15
    requests = [{"engine_id": a["engine_id"], "sensor_data": [reading]} for reading in a["sensor_data"][:n]]
    requests += [{"engine_id": b["engine_id"], "sensor_data": b["sensor_data"][:1]},
                 {"engine_id": c["engine_id"], "sensor_data": c["sensor_data"][:1]},
                 # a was forgotten when c arrived: its cycle 1 is accepted as a fresh start
                 {"engine_id": a["engine_id"], "sensor_data": a["sensor_data"][:1]}]
    with server.client() as client:
        updates = list(client.stream(requests, timeout_s=30))
        last_of_a = updates[n - 1].prediction
        assert last_of_a is not None
        on_last_keep = client.predict(a["engine_id"], a["sensor_data"][n - keep : n])
        on_all = client.predict(a["engine_id"], a["sensor_data"][:n])
    assert last_of_a.predicted_rul == on_last_keep.predicted_rul
    # The bound shows in the result, so the equality above means something.
    assert on_all.predicted_rul != on_last_keep.predicted_rul
    assert updates[-1].error is None and updates[-1].prediction is not None
    assert updates[-1].prediction.last_cycle == 1


def test_no_model_is_unavailable(grpc_server, engines):
    server = grpc_server(None)
    body = engines[0]
    with server.client() as client:
        with pytest.raises(ModelUnavailableError, match="no model is loaded"):
            client.predict(body["engine_id"], body["sensor_data"][:5])
        with pytest.raises(ModelUnavailableError, match="no model is loaded"):
            client.batch_predict([body])
        (update,) = client.stream([{"engine_id": "e", "sensor_data": body["sensor_data"][:1]}], timeout_s=10)
        assert isinstance(update.error, ModelUnavailableError)
    with grpc.insecure_channel(server.target) as channel, pytest.raises(grpc.RpcError) as err:
        rul_pb2_grpc.RulServiceStub(channel).PredictRUL(rul_pb2.PredictRULRequest(engine_id="e"), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_reload_makes_a_model_available(grpc_server, engines, tiny_bundle):
    server = grpc_server(None)
    body = engines[0]
    with server.client() as client:
        with pytest.raises(ModelUnavailableError):
            client.predict(body["engine_id"], body["sensor_data"][:5])
        server.run(server.service.reload(tiny_bundle), timeout_s=60)
        assert client.predict(body["engine_id"], body["sensor_data"][:5]).engine_id == body["engine_id"]


def test_hot_swap_under_grpc_load_fails_no_request(grpc_server, predictor, engines, tiny_bundle_copy_factory):
    server = grpc_server(predictor, cache_size=0)
    copy = tiny_bundle_copy_factory("swap")
    stop = threading.Event()
    failures: list[BaseException] = []
    answered = [0]

    def load(k: int) -> None:
        body = engines[k]
        with server.client(timeout_s=20) as client:
            i = 0
            while not stop.is_set():
                try:
                    client.predict(body["engine_id"], body["sensor_data"][: 10 + i % 30])
                    answered[0] += 1
                except BaseException as exc:
                    failures.append(exc)
                i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            # Requests keep flowing around every swap (a swap with nothing in flight proves nothing).
            seen = answered[0]
            wait_until(lambda seen=seen: answered[0] >= seen + 20)
            server.run(server.service.reload(copy), timeout_s=60)
        seen = answered[0]
        wait_until(lambda: answered[0] >= seen + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert server.service.counters.reloads == 3
    assert failures == []


def test_request_id_and_log_lines(grpc_server, predictor, engines, request_logs):
    """Errors are always logged, successes sampled (rate 1 here); identifiers only, never readings."""
    server = grpc_server(predictor, log_sample_rate=1.0)
    body = engines[0]
    with grpc.insecure_channel(server.target) as channel:
        stub = rul_pb2_grpc.RulServiceStub(channel)
        request = rul_pb2.PredictRULRequest(engine_id="logged", sensor_data=reading_messages(body["sensor_data"][:5]))
        _, call = stub.PredictRUL.with_call(request, metadata=(("x-request-id", "req-42"),), timeout=10)
        assert dict(call.trailing_metadata())["x-request-id"] == "req-42"
        with pytest.raises(grpc.RpcError) as err:
            stub.PredictRUL(rul_pb2.PredictRULRequest(engine_id="bad"), timeout=10)
        generated = dict(err.value.trailing_metadata())["x-request-id"]
    ok = [e for e in request_logs if e.get("request_id") == "req-42"]
    assert len(ok) == 1
    assert ok[0]["route"] == "grpc PredictRUL" and ok[0]["status"] == 200 and ok[0]["grpc_code"] == "OK"
    assert ok[0]["engine_id"] == "logged" and ok[0]["model_version"] == predictor.version
    assert ok[0]["latency_ms"] > 0
    # The status reaches the client as the call aborts, a moment before the server writes its line.
    wait_until(lambda: any(e.get("request_id") == generated for e in request_logs))
    (failed,) = [e for e in request_logs if e.get("request_id") == generated]
    assert failed["status"] == 422 and failed["grpc_code"] == "INVALID_ARGUMENT"
    assert failed["error"] == "sensor_data: is empty; send at least one reading"
    first_value = next(v for k, v in body["sensor_data"][0].items() if k != "cycle")
    assert repr(first_value) not in repr(request_logs)  # no reading ever reaches the log
