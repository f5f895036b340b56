"""End to end: ``prognos serve`` in a subprocess (REST and gRPC on free 127.0.0.1 ports), called
with the package's gRPC client, a generic reflection client and plain HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from prognos.errors import PrognosError, ValidationError
from prognos.serving.grpc.client import RulClient

TOKEN = "grpc-e2e-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, http_port: int, grpc_port: int) -> None:
        self.proc, self.log, self.http_port, self.grpc_port = proc, log, http_port, grpc_port

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_serving(served: Served, timeout_s: float = 60.0) -> None:
    """Poll the gRPC health service until SERVING (the model is loaded and warm)."""
    deadline = time.monotonic() + timeout_s
    with RulClient(served.grpc_target, timeout_s=1.0) as client:
        while time.monotonic() < deadline:
            if served.proc.poll() is not None:
                raise AssertionError(f"prognos serve exited with {served.proc.returncode}:\n{served.output()}")
            try:
                if client.health() == "SERVING":
                    return
            except PrognosError:  # not listening yet
                pass
            time.sleep(0.05)
    raise AssertionError(f"gRPC health not SERVING within {timeout_s} s:\n{served.output()}")


def start(bundle: Path, work: Path) -> Served:
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    env.update(PROGNOS_DATA_DIR=str(work / "data"), PROGNOS_ADMIN_TOKEN=TOKEN, PROGNOS_SHUTDOWN_GRACE_S="2",
               PROGNOS_LOG_SAMPLE_RATE="0")
    log = work / "serve.log"
    with open(log, "wb") as out:
        # cwd: an empty directory, so no stray .env changes the settings under test.
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve", "--bundle", str(bundle),
                                 "--host", "127.0.0.1", "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Served(proc, log, http_port, grpc_port)


def stop(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(15)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait(5)


@pytest.fixture(scope="module")
def served(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tiny_bundle, tmp_path_factory.mktemp("grpc-serve"))
    try:
        wait_serving(server)
        yield server
    finally:
        stop(server)


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timestamp"}


def test_grpc_and_rest_give_the_same_prediction(served, engines):
    body = {"engine_id": engines[0]["engine_id"], "sensor_data": engines[0]["sensor_data"][:35]}
    with RulClient(served.grpc_target) as client:
        over_grpc = client.predict(body["engine_id"], body["sensor_data"])
        batch = client.batch_predict([body, {"engine_id": "b", "sensor_data": engines[1]["sensor_data"][:10]}])
    over_rest = httpx.post(f"http://127.0.0.1:{served.http_port}/api/v1/predict", json=body,
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert over_rest.status_code == 200, over_rest.text
    assert _strip(over_grpc.to_dict()) == _strip(over_rest.json())
    assert _strip(batch[0].to_dict()) == _strip(over_rest.json())
    assert batch[1].engine_id == "b"


def test_stream_and_bad_input_against_the_process(served, engines, predictor):
    readings = engines[2]["sensor_data"][:6]
    with RulClient(served.grpc_target) as client:
        updates = list(client.stream(({"engine_id": "live", "sensor_data": [r]} for r in readings), timeout_s=30))
        assert [u.prediction.last_cycle for u in updates if u.prediction] == [1, 2, 3, 4, 5, 6]
        field = predictor.spec.required[0]
        broken = [dict(r) for r in readings]
        broken[2].pop(field)
        with pytest.raises(ValidationError, match=rf"^sensor_data\[2\]\.{field}: missing"):
            client.predict("e", broken)


def test_reflection_and_health_against_the_process(served):
    with grpc.insecure_channel(served.grpc_target) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert {"prognos.v1.RulService", "grpc.health.v1.Health"} <= set(services)
    with RulClient(served.grpc_target) as client:
        assert client.health("prognos.v1.RulService") == "SERVING"


def test_sigterm_turns_health_not_serving_then_exits(tiny_bundle, tmp_path):
    server = start(tiny_bundle, tmp_path)
    try:
        wait_serving(server)
        with grpc.insecure_channel(server.grpc_target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            server.proc.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()
        assert server.proc.wait(15) == 0, server.output()
    finally:
        stop(server)
