"""Status codes over a real socket: every bad input -> INVALID_ARGUMENT naming the field; overload
-> a fast RESOURCE_EXHAUSTED (server still ready afterwards); message limits; bugs -> INTERNAL
without a traceback."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prognos.bundle import read_bundle
from prognos.errors import OverloadedError
from prognos.serving.grpc.messages import reading_messages
from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc
from prognos.serving.predictor import Predictor
from prognos.serving.runtime import OnnxRuntime


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.005)


def raw_call(target: str, request: rul_pb2.PredictRULRequest) -> grpc.RpcError:
    """Send with the generated stub (no client-side checks) and return the error it must raise."""
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as err:
        rul_pb2_grpc.RulServiceStub(channel).PredictRUL(request, timeout=10)
    return err.value


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def request_of(readings: list[dict[str, Any]], engine_id: str = "engine-1") -> rul_pb2.PredictRULRequest:
    return rul_pb2.PredictRULRequest(engine_id=engine_id, sensor_data=reading_messages(readings))


Mutation = Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]
F = "<field>"  # stands for the first field the model requires


def _drop(field: str, i: int) -> Mutation:
    def mutate(rs: list[dict[str, Any]], f: str) -> list[dict[str, Any]]:
        rs[i] = {k: v for k, v in rs[i].items() if k != (f if field == F else field)}
        return rs
    return mutate


def _set(field: str, i: int, value: Any) -> Mutation:
    def mutate(rs: list[dict[str, Any]], f: str) -> list[dict[str, Any]]:
        rs[i] = dict(rs[i], **{(f if field == F else field): value})
        return rs
    return mutate


BAD_READINGS: dict[str, tuple[Mutation, str]] = {
    "missing field": (_drop(F, 3), r"^sensor_data\[3\]\.{f}: missing"),
    "NaN": (_set(F, 2, math.nan), r"^sensor_data\[2\]\.{f}: nan is not a finite number"),
    "+Inf": (_set(F, 2, math.inf), r"^sensor_data\[2\]\.{f}: inf is not a finite number"),
    "-Inf": (_set(F, 0, -math.inf), r"^sensor_data\[0\]\.{f}: -inf is not a finite number"),
    "implausible value": (_set(F, 4, 1e9), r"^sensor_data\[4\]\.{f}: 1e\+09 is outside the plausible range"),
    "empty sequence": (lambda rs, f: [], r"^sensor_data: is empty"),
    "too many readings": (lambda rs, f: [dict(rs[0], cycle=i + 1) for i in range(501)],
                          r"^sensor_data: 501 readings exceed the limit of 500"),
    "cycle repeats": (_set("cycle", 5, 5), r"^sensor_data\[5\]\.cycle: 5 does not increase \(previous is 5\)"),
    "cycle goes back": (_set("cycle", 1, 0), r"^sensor_data\[1\]\.cycle: 0 does not increase"),
    "cycle on some readings only": (_drop("cycle", 6), r"^sensor_data\[6\]\.cycle: missing"),
    "negative cycle": (lambda rs, f: [dict(rs[0], cycle=-1)], r"^sensor_data\[0\]\.cycle: -1 is not a non-negative"),
}


@pytest.mark.parametrize("case", list(BAD_READINGS))
def test_bad_readings_are_invalid_argument_naming_the_field(shared_server, engines, predictor, case):
    mutate, pattern = BAD_READINGS[case]
    field = predictor.spec.required[0]
    readings = mutate([dict(r) for r in engines[0]["sensor_data"][:10]], field)
    err = raw_call(shared_server.target, request_of(readings))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _matches(pattern.format(f=field), err.details())
    assert "Traceback" not in err.details()


def _matches(pattern: str, text: str) -> bool:
    import re

    assert re.search(pattern, text), f"{text!r} does not match {pattern!r}"
    return True


def test_missing_engine_id(shared_server, engines):
    err = raw_call(shared_server.target, request_of(engines[0]["sensor_data"][:3], engine_id=" "))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("engine_id: missing")


def test_unknown_field_number_is_named(shared_server, engines):
    """A client built from a different .proto sends a field this server does not know."""
    request = request_of(engines[0]["sensor_data"][:3])
    extra = request.sensor_data[1].SerializeToString() + varint(99 << 3 | 0) + varint(7)
    request.sensor_data[1].Clear()
    request.sensor_data[1].MergeFromString(extra)
    err = raw_call(shared_server.target, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("sensor_data[1]: unknown field number 99")


def test_a_string_for_a_number_is_named(shared_server, engines, predictor):
    """The wire can carry a string where a sensor value belongs; it must not read as 'missing'."""
    field = predictor.spec.required[0]
    number = rul_pb2.Reading.DESCRIPTOR.fields_by_name[field].number
    request = request_of(engines[0]["sensor_data"][:3])
    reading = {k: v for k, v in engines[0]["sensor_data"][2].items() if k != field}
    wire = reading_messages([reading])[0].SerializeToString() + varint(number << 3 | 2) + varint(3) + b"abc"
    request.sensor_data[2].Clear()
    request.sensor_data[2].MergeFromString(wire)
    err = raw_call(shared_server.target, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"sensor_data[2].{field}: not a number")


class GatedRuntime:
    """ONNX Runtime behind a gate: each model call waits until the test opens it, so a request can
    be held in the model for as long as the test needs (overload made deterministic)."""

    def __init__(self, model_path: Path) -> None:
        self.inner = OnnxRuntime(model_path)
        self.gate = threading.Event()

    def run(self, x: np.ndarray) -> np.ndarray:
        if not self.gate.wait(30):
            raise TimeoutError("gate never opened")
        return self.inner.run(x)


@pytest.fixture
def gated(tiny_bundle: Path) -> Iterator[tuple[Predictor, GatedRuntime]]:
    bundle = read_bundle(tiny_bundle)
    runtime = GatedRuntime(bundle.model_path)
    yield Predictor(bundle, runtime), runtime
    runtime.gate.set()


def test_overload_is_a_fast_resource_exhausted_and_the_server_stays_ready(grpc_server, gated, engines):
    predictor, runtime = gated
    server = grpc_server(predictor, max_queue=1, cache_size=0)
    a, b = engines[0], engines[1]
    with server.client(timeout_s=20) as client, ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.predict, a["engine_id"], a["sensor_data"][:20])
        wait_until(lambda: server.service.batcher.stats.pending >= 1)

        started = time.monotonic()
        with pytest.raises(OverloadedError, match="server busy") as refused:
            client.predict(b["engine_id"], b["sensor_data"][:20])
        assert time.monotonic() - started < 1.0
        assert refused.value.retry_after_s == 1.0  # from the grpc-retry-pushback-ms trailer
        err = raw_call(server.target, request_of(b["sensor_data"][:20], b["engine_id"]))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert dict(err.trailing_metadata())["grpc-retry-pushback-ms"] == "1000"

        resend = threading.Event()

        def live() -> Iterator[dict[str, Any]]:
            request = {"engine_id": b["engine_id"], "sensor_data": b["sensor_data"][:1]}
            yield request
            resend.wait(20)
            yield request  # refused before, so not in the history: the same reading is accepted now

        updates = client.stream(live(), timeout_s=20)
        first = next(updates)
        assert isinstance(first.error, OverloadedError)

        runtime.gate.set()
        assert held.result(20).engine_id == a["engine_id"]
        resend.set()
        second = next(updates)
        assert second.error is None and second.prediction is not None and second.prediction.last_cycle == 1
        assert list(updates) == []

        assert client.health() == "SERVING"
        assert client.predict(b["engine_id"], b["sensor_data"][:20]).engine_id == b["engine_id"]


def test_concurrent_rpc_limit(grpc_server, gated, engines):
    predictor, runtime = gated
    server = grpc_server(predictor, grpc_max_concurrent_rpcs=1, cache_size=0)
    a = engines[0]
    with server.client(timeout_s=20) as client, ThreadPoolExecutor(1) as pool:
        held = pool.submit(client.predict, a["engine_id"], a["sensor_data"][:20])
        wait_until(lambda: server.service.batcher.stats.pending >= 1)
        err = raw_call(server.target, request_of(a["sensor_data"][:10], a["engine_id"]))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        runtime.gate.set()
        held.result(20)


def test_message_size_limit(grpc_server, engines, predictor):
    server = grpc_server(predictor, grpc_max_message_mb=0.01)  # 10 KiB
    big = request_of([dict(engines[0]["sensor_data"][0], cycle=i + 1) for i in range(400)])
    assert big.ByteSize() > 0.01 * 2**20
    err = raw_call(server.target, big)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with server.client() as client:
        assert client.predict("engine-1", engines[0]["sensor_data"][:5]).last_cycle == 5


class BrokenRuntime:
    def run(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("secret internals")


def test_a_bug_is_internal_without_a_traceback(grpc_server, tiny_bundle, engines):
    server = grpc_server(Predictor(read_bundle(tiny_bundle), BrokenRuntime()), cache_size=0)
    err = raw_call(server.target, request_of(engines[0]["sensor_data"][:5]))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "PredictRUL: internal error (logged on the server)"


def test_ping_policy_comes_from_settings(grpc_server):
    """A client pinging every 100 ms is allowed when grpc_min_ping_interval_s is 0. gRPC's default
    policy (5 min) would close its connection ("too many pings") within about 3 s, so a watch that
    lives 4 s shows the setting reached the server."""
    server = grpc_server(None, grpc_min_ping_interval_s=0)
    options = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_permit_without_calls", 1),
               ("grpc.http2.max_pings_without_data", 0)]
    with grpc.insecure_channel(server.target, options=options) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=4)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            next(watch)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # not UNAVAILABLE "Too many pings"
