"""A real grpc.aio server on 127.0.0.1 (a free port), run on its own event loop in a thread, so the
tests call it with the blocking client exactly as a remote caller would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog

from prognos.config import Settings
from prognos.data.cmapss import Readings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.serving.grpc.client import RulClient
from prognos.serving.grpc.health import ReadinessHealth
from prognos.serving.grpc.server import Ingestor, add_port, build_server
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService

T = TypeVar("T")


class GrpcServerThread:
    """``build_server`` + ``add_port(127.0.0.1, 0)`` + ``start`` on a private loop in a thread."""

    def __init__(self, service: PredictionService, settings: Settings, ingestor: Ingestor | None = None) -> None:
        self.service, self.settings, self.ingestor = service, settings, ingestor
        self.loop = asyncio.new_event_loop()
        self.health = ReadinessHealth(service, watch_interval_s=0.05)
        self.port = 0
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="grpc-test-server", daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.server = build_server(self.service, self.settings, self.ingestor, health=self.health)
            self.port = add_port(self.server, "127.0.0.1", 0)
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def start(self) -> GrpcServerThread:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("gRPC test server did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run a coroutine on the server's loop (e.g. ``service.reload``) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.run(self.health.enter_graceful_shutdown())  # as prognos serve does
        self.run(self.server.stop(0))
        self.run(self.service.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def client(self, **kwargs: Any) -> RulClient:
        return RulClient(self.target, **kwargs)


def test_settings(**overrides: Any) -> Settings:
    """Settings for a test server, independent of the environment and any .env file. The rate limits are off
    unless a test sets them: these tests drive load from one address (the limits are tested in tests/reliability)."""
    overrides.setdefault("anonymous_rate_limit_per_s", 0)
    overrides.setdefault("rate_limit_per_s", 0)
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(autouse=True)
def request_logs() -> Iterator[list[dict[str, Any]]]:
    """The structured log lines the servers write during a test (instead of printing them)."""
    with structlog.testing.capture_logs() as logs:
        yield logs


@pytest.fixture(scope="session")
def predictor(tiny_bundle: Path) -> Predictor:
    return Predictor.from_path(tiny_bundle)


@pytest.fixture
def grpc_server() -> Iterator[Callable[..., GrpcServerThread]]:
    """Start servers (any settings, predictor or none, ingestor); all are stopped after the test."""
    started: list[GrpcServerThread] = []

    def start(predictor: Predictor | None, ingestor: Ingestor | None = None, **overrides: Any) -> GrpcServerThread:
        settings = test_settings(**overrides)
        server = GrpcServerThread(PredictionService(settings, predictor), settings, ingestor).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(tiny_bundle: Path) -> Iterator[GrpcServerThread]:
    """One server with the tiny bundle and default settings, for tests that do not change it."""
    settings = test_settings()
    server = GrpcServerThread(PredictionService(settings, Predictor.from_path(tiny_bundle)), settings).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def engines(synthetic_readings: Readings, tiny_bundle: Path) -> list[dict[str, Any]]:
    """REST bodies ``{"engine_id", "sensor_data"}`` of synthetic engines, with the fields the
    bundle requires and cycles."""
    required = Predictor.from_path(tiny_bundle).spec.required
    columns = [MEASUREMENT_FIELDS.index(name) for name in required]
    bodies = []
    for engine in synthetic_readings.engines():
        readings = [
            {"cycle": int(c), **{name: float(row[j]) for name, j in zip(required, columns, strict=True)}}
            for c, row in zip(engine.cycles, engine.values, strict=True)
        ]
        bodies.append({"engine_id": str(engine.engine_id), "sensor_data": readings})
    return bodies
