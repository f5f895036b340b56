"""The serving process: REST (uvicorn) and gRPC in one asyncio event loop around one
:class:`~prognos.serving.service.PredictionService`.

Start-up: listen at once (``/health`` answers, ``/ready`` says 503), then load, verify and warm up
the bundle in a worker thread; ``/ready`` turns 200 when that is done. A bundle that fails to load
ends the process with the bundle error's exit code.

Signals: SIGTERM / SIGINT -> not ready, stop accepting, let in-flight requests finish, exit within
``shutdown_grace_s``; SIGHUP -> reload the current bundle path (hot swap; a bad bundle is refused
and the old model keeps serving).

A front-end module: it runs the REST and gRPC front ends around the service it is GIVEN. What
else the process serves (fleet app, dashboard, lifecycle jobs) arrives as
:class:`~prognos.serving.hooks.ServerHooks` from the composition root, :mod:`prognos.assembly`;
this module imports nothing above ``serving``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from collections.abc import Awaitable, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from prognos.config import Settings
from prognos.errors import BundleError, ConfigError, PrognosError
from prognos.serving.hooks import ServerHooks
from prognos.serving.http import create_app
from prognos.serving.http.auth import Authenticator, TokenAuthenticator
from prognos.serving.http.transport import uvicorn_options
from prognos.serving.logs import configure_logging, get_logger
from prognos.serving.service import PredictionService

__all__ = ["ServerHooks", "run", "serve"]

log = get_logger("prognos.server")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: this module owns the signals of the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class _Grpc:
    server: Any  # grpc.aio.Server
    health: Any  # ReadinessHealth
    port: int


def _build_grpc(service: PredictionService, settings: Settings, ingestor: Any = None,
                authenticator: Authenticator | None = None) -> _Grpc | None:
    """The gRPC engineer's server, bound to ``grpc_port``; None (REST only) if it is not installed."""
    try:
        from prognos.serving.grpc.health import ReadinessHealth
        from prognos.serving.grpc.server import add_port, build_server, tls_files
    except ImportError as exc:
        log.warning("grpc server not available; serving REST only", reason=str(exc))
        return None
    health = ReadinessHealth(service)
    server = build_server(service, settings, ingestor, health=health, authenticator=authenticator)
    return _Grpc(server, health, add_port(server, settings.host, settings.grpc_port, tls_files(settings)))


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():  # could not bind, or similar: surface uvicorn's error
            task.result()
            raise ConfigError(f"HTTP server could not start on {server.config.host}:{server.config.port}")
        await asyncio.sleep(0.01)


async def serve(settings: Settings, service: PredictionService, hooks: ServerHooks | None = None) -> None:
    """Serve ``service`` (its model not loaded yet: loaded here, from ``settings.bundle``) until
    SIGTERM / SIGINT. Raises :class:`BundleError` if the bundle cannot be loaded."""
    hooks = hooks or ServerHooks()
    started = time.perf_counter()
    if settings.bundle is None and not service.remote:  # a gateway's pool loads no bundle
        raise ConfigError("no bundle: pass --bundle DIR or set PROGNOS_BUNDLE")
    loop = asyncio.get_running_loop()
    authenticator = hooks.authenticator or TokenAuthenticator(settings.admin_token)
    if settings.sagemaker:
        from prognos.serving.sagemaker import create_sagemaker_app

        app = create_sagemaker_app(settings, service)
        port, grpc_server = settings.sagemaker_port, None
    else:
        app = create_app(settings, service, authenticator, hooks.routers)
        for configure in hooks.configure_app:
            configure(app)
        await asyncio.to_thread(app.openapi)  # built once, now: on the first /openapi.json it held the loop
        port, grpc_server = settings.http_port, _build_grpc(service, settings, hooks.ingestor, authenticator)
    uvicorn_grace_s = max(1, math.ceil(settings.shutdown_grace_s))  # uvicorn takes whole seconds
    http = _Uvicorn(uvicorn.Config(app, host=settings.host, port=port, log_config=None, access_log=False,
                                   lifespan="off", timeout_graceful_shutdown=uvicorn_grace_s,
                                   **uvicorn_options(settings)))

    stop = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    async def reload_on_hup() -> None:
        try:
            manifest = await service.reload()
            log.info("model reloaded (SIGHUP)", model_version=manifest.version)
        except PrognosError as exc:
            log.error("reload refused; the previous model keeps serving", error=str(exc))

    def on_hup() -> None:
        task = loop.create_task(reload_on_hup())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)

    http_task = loop.create_task(http.serve(), name="prognos-http")
    try:
        await _wait_started(http, http_task)
        if grpc_server is not None:
            await grpc_server.server.start()
        log.info("listening", host=settings.host, http_port=port, grpc_port=grpc_server.port if grpc_server else None)
        load = loop.create_task(service.reload(settings.bundle))
        done, _ = await asyncio.wait({load, loop.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if load in done:
            manifest = load.result()  # raises BundleError: nothing to serve, so the process ends
            log.info("ready", model_version=manifest.version, start_to_ready_s=round(time.perf_counter() - started, 3))
            for hook in hooks.on_startup:
                await hook(service)
        else:
            load.cancel()
        await stop.wait()
    finally:
        log.info("shutting down", grace_s=settings.shutdown_grace_s)
        service.begin_shutdown()
        http.should_exit = True  # stops accepting; uvicorn lets in-flight requests finish (within the grace)
        stops: list[Awaitable[Any]] = [http_task]
        if grpc_server is not None:
            await grpc_server.health.enter_graceful_shutdown()  # health checks answer NOT_SERVING
            stops.append(grpc_server.server.stop(settings.shutdown_grace_s))
        try:
            # The grace period bounds the whole drain; whatever is still open then is cut off.
            await asyncio.wait_for(asyncio.gather(*stops, return_exceptions=True), max(0.1, settings.shutdown_grace_s))
        except TimeoutError:
            log.error("grace period exceeded; exiting with requests still open")
        for hook in hooks.on_shutdown:
            await hook(service)
        await service.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("stopped")


def run(settings: Settings, service: PredictionService, hooks: ServerHooks | None = None) -> None:
    """Process entry: configure logging once, then serve ``service`` in a fresh event loop."""
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        asyncio.run(serve(settings, service, hooks))
    except BundleError as exc:
        log.error("cannot serve the bundle", error=str(exc))
        raise
