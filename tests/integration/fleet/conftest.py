"""Fixtures of the fleet tests: a database of each kind (SQLite file, real PostgreSQL 15), a
prediction service on the tiny bundle, and a real HTTP server (uvicorn on 127.0.0.1, free port)
running the serving + fleet app."""

from __future__ import annotations

import asyncio
import socket
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
from prognos.fleet.database import connect, upgrade
from prognos.fleet.notify import FakeNotifier, Notifier
from prognos.fleet.store import FleetStore
from prognos.serving.http import create_app
from prognos.serving.service import PredictionService, load_predictor
from tests.integration.conftest_pg import PostgresServer, postgres_unavailable_reason, start_postgres

ADMIN_TOKEN = "test-admin-token"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = start_postgres()
    try:
        # Migrate once into a template; each test then copies it (CREATE DATABASE ... TEMPLATE).
        template = server.create_database("prognos_template")
        db = connect(template)
        upgrade(db)
        db.dispose()
        yield server
    finally:
        server.stop()


def _pg_database(server: PostgresServer) -> str:
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE prognos_template')
    return server.url(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "fleet.db"
    db = connect(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh database of each kind, already migrated (copied from a migrated template).
    ``@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)`` picks one kind."""
    if request.param == "sqlite":
        import shutil

        shutil.copy(sqlite_template, tmp_path / "fleet.db")
        return f"sqlite:///{tmp_path / 'fleet.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return _pg_database(server)


@pytest.fixture
def fleet_settings(database_url: str, tmp_path: Path, tiny_bundle: Path) -> Settings:
    """No status hysteresis and no resolve debounce: each ingest's verdict shows at once (both are
    tested in test_alert_memory.py with their own settings)."""
    return get_settings(data_dir=tmp_path / "state", database_url=database_url, admin_token=ADMIN_TOKEN,
                        bundle=tiny_bundle, log_level="WARNING", rate_limit_per_s=0, status_hold_readings=1,
                        alert_resolve_readings=1, alert_min_open_s=0)


@pytest.fixture
def store(database_url: str) -> Iterator[FleetStore]:
    db = connect(database_url)
    upgrade(db)
    yield FleetStore(db)
    db.dispose()


@pytest.fixture(scope="session")
def tiny_predictor(tiny_bundle: Path):  # type: ignore[no-untyped-def]
    return load_predictor(tiny_bundle, get_settings(log_level="WARNING"))


@pytest.fixture
def service(fleet_settings: Settings, tiny_predictor) -> PredictionService:  # type: ignore[no-untyped-def]
    return PredictionService(fleet_settings, tiny_predictor)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveApp:
    """The serving + fleet app on a real socket; ``client(key)`` is an httpx client for it."""

    url: str
    fleet: Fleet
    service: PredictionService
    _server: uvicorn.Server
    _thread: threading.Thread

    def client(self, key: str | None = ADMIN_TOKEN, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def key(self, role: str) -> str:
        return self.fleet.keys.create(role, f"test {role}").secret

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def start_live_app(settings: Settings, service: PredictionService, notifier: Notifier | None = None, *,
                   dashboard: bool = False) -> LiveApp:
    """``dashboard``: also serve the web pages (/ui), as ``prognos serve`` does."""
    fleet = build_fleet(settings, service, notifier=notifier or FakeNotifier())
    routers = list(fleet.routers)
    if dashboard:
        from prognos.web import build_router as build_web_router

        routers.append(build_web_router(settings))
    app = create_app(settings, service, fleet.authenticator, routers)
    fleet.install(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    started = threading.Event()

    def run() -> None:
        async def main() -> None:
            await fleet.start()
            try:
                task = asyncio.create_task(server.serve())
                while not server.started and not task.done():
                    await asyncio.sleep(0.01)
                started.set()
                await task
            finally:
                await fleet.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, name=f"live-app-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not started.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError("live app did not start")
        time.sleep(0.01)
    return LiveApp(f"http://127.0.0.1:{port}", fleet, service, server, thread)


@pytest.fixture
def live(fleet_settings: Settings, service: PredictionService) -> Iterator[LiveApp]:
    app = start_live_app(fleet_settings, service)
    yield app
    app.stop()
