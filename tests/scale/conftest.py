"""Fixtures of the scale-out tests: a real Mosquitto, and the fleet app (REST on a real socket)
with the MQTT subscriber on the same event loop, in a background thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from prognos.config import Settings, get_settings
from prognos.fleet import Fleet, build_fleet
from prognos.fleet.mqtt import MqttSubscriber
from prognos.fleet.notify import FakeNotifier
from prognos.serving.http import create_app
from prognos.serving.service import PredictionService, load_predictor
from tests.integration.conftest_pg import PostgresServer, postgres_unavailable_reason, start_postgres
from tests.scale.brokers import Mosquitto, free_port, mosquitto_unavailable_reason

ADMIN_TOKEN = "scale-admin-token"


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    reason = mosquitto_unavailable_reason()
    if reason:
        pytest.skip(reason)
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class MqttApp:
    """The fleet app on a real socket plus its MQTT subscriber, both on one event loop."""

    url: str
    settings: Settings
    fleet: Fleet
    subscriber: MqttSubscriber
    _server: uvicorn.Server
    _thread: threading.Thread

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def start_mqtt_app(settings: Settings, service: PredictionService) -> MqttApp:
    fleet = build_fleet(settings, service, notifier=FakeNotifier())
    app = create_app(settings, service, fleet.authenticator, fleet.routers)
    fleet.install(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    subscriber = MqttSubscriber(settings, fleet.ingestor)
    started = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        async def main() -> None:
            await fleet.start()
            await subscriber.start()
            try:
                task = asyncio.create_task(server.serve())
                while not server.started and not task.done():
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(subscriber.connected.wait(), 20)
                started.set()
                await task
            finally:
                await subscriber.stop()
                await fleet.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the test below
            failed.append(exc)
            started.set()

    thread = threading.Thread(target=run, name=f"mqtt-app-{port}", daemon=True)
    thread.start()
    if not started.wait(60) or failed:
        raise RuntimeError(f"the fleet app with its MQTT subscriber did not start: {failed}")
    return MqttApp(f"http://127.0.0.1:{port}", settings, fleet, subscriber, server, thread)


@pytest.fixture(scope="session")
def scale_predictor(tiny_bundle: Path) -> Any:
    return load_predictor(tiny_bundle, get_settings(log_level="WARNING"))


@pytest.fixture
def mqtt_settings(tmp_path: Path, tiny_bundle: Path, mosquitto: Mosquitto) -> Settings:
    return get_settings(data_dir=tmp_path / "state", admin_token=ADMIN_TOKEN, bundle=tiny_bundle,
                        log_level="WARNING", rate_limit_per_s=0, mqtt_client_id=f"prognos-test-{mosquitto.port}",
                        **mosquitto.settings_overrides())


@pytest.fixture
def mqtt_app(mqtt_settings: Settings, scale_predictor: Any) -> Iterator[MqttApp]:
    app = start_mqtt_app(mqtt_settings, PredictionService(mqtt_settings, scale_predictor))
    try:
        yield app
    finally:
        app.stop()


def wait_for(cond: Any, what: str, timeout_s: float = 60.0, every_s: float = 0.05) -> None:
    """Poll ``cond`` until it is truthy; fail naming ``what`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)
