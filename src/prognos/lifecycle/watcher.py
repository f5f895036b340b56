"""Follow a registry alias: when ``production`` moves, fetch the new bundle and hand its path over.

The serving process wires the callback to its hot swap (``PredictionService.reload(path)``), so a
server started with ``--model production`` follows promotions and rollbacks without a restart::

    watcher = RegistryWatcher(registry, "production", service.reload, interval_s=settings.registry_poll_s)
    watcher.start()          # a daemon thread; or ``await watcher.run()`` inside an event loop
    ...
    watcher.stop()

Any failure — a tampered artifact (refused by the checksum checks), an unreachable store, a reload
the server refuses — is logged, counted in ``errors`` and retried at the next poll; the model being
served is kept meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from prognos.config import Settings
from prognos.errors import PrognosError

if TYPE_CHECKING:
    from prognos.serving.hooks import ServerHooks
    from prognos.serving.service import PredictionService

__all__ = ["AliasSource", "AliasTarget", "FollowedModel", "RegistryWatcher", "follow_model"]

log = logging.getLogger("prognos.lifecycle")

Callback = Callable[[Path], object]


class _Versioned(Protocol):
    @property
    def version(self) -> int: ...


class AliasSource(Protocol):
    """What a watcher polls: the built-in :class:`~prognos.lifecycle.registry.Registry`, or
    :class:`~prognos.lifecycle.tracking.MlflowAliases` for an MLflow registered model."""

    def alias(self, name: str) -> _Versioned | None: ...

    def fetch(self, ref: int) -> Path: ...


@dataclass(frozen=True)
class AliasTarget:
    """What an alias resolved to: the version number and the verified local bundle path."""

    version: int
    path: Path


class RegistryWatcher:
    """Polls ``registry`` every ``interval_s`` seconds and calls ``on_change(path)`` when ``alias`` moves."""

    def __init__(self, registry: AliasSource, alias: str, on_change: Callback, *, interval_s: float = 5.0,
                 current: int | None = None) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.registry = registry
        self.alias = alias
        self.on_change = on_change
        self.interval_s = interval_s
        self.current = current  # version being served; None until the first change
        self.errors = 0  # failed polls, for health pages and tests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> AliasTarget | None:
        """One check: the new target if the alias moved (already fetched and verified), else None."""
        mv = self.registry.alias(self.alias)
        if mv is None or mv.version == self.current:
            return None
        return AliasTarget(mv.version, self.registry.fetch(mv.version))

    def check(self) -> AliasTarget | None:
        """Poll, and call ``on_change`` (synchronously) if the alias moved. Errors are logged, not raised."""
        try:
            target = self.poll()
            if target is None:
                return None
            result = self.on_change(target.path)
        except Exception as exc:  # a store hiccup or a refused reload must not end the following: retried
            self._failed(exc)
            return None
        if inspect.iscoroutine(result):
            result.close()
            raise TypeError("on_change is a coroutine function: use `await watcher.run()` for async callbacks")
        self._moved(target)
        return target

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        detail = str(exc) if isinstance(exc, PrognosError) else f"{type(exc).__name__}: {exc}"
        log.warning("registry alias %r: keeping version %s: %s", self.alias, self.current, detail)

    def _moved(self, target: AliasTarget) -> None:
        log.info("registry alias %r moved from version %s to %s", self.alias, self.current, target.version)
        self.current = target.version

    # --- a background thread ----------------------------------------------------------------

    def start(self) -> None:
        """Poll in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"registry-watch-{self.alias}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # --- inside an event loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Poll forever from a running event loop (cancel the task to stop). ``on_change`` may be a
        coroutine function; store access runs in a worker thread so the loop never blocks."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                target = await asyncio.to_thread(self.poll)
                if target is not None:
                    result = self.on_change(target.path)
                    if inspect.isawaitable(result):
                        await result
                    self._moved(target)
            except Exception as exc:  # as in check()
                self._failed(exc)



# --- `prognos serve --model REF` ---------------------------------------------------------------


@dataclass(frozen=True)
class FollowedModel:
    """What ``prognos serve --model REF`` runs with: settings whose ``bundle`` is the resolved local
    copy, and server hooks that (for a registry alias) follow the alias and hot-swap on each move."""

    settings: Settings
    hooks: ServerHooks
    version: str  # registry version number or MLflow model version, for the start-up message


def follow_model(settings: Settings, ref: str, hooks: ServerHooks) -> FollowedModel:
    """Resolve ``ref`` — a registry alias (``production``, ``candidate``), a registry version (``3``),
    ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` (MLflow) — to a verified local bundle.

    For an alias (registry or MLflow), a :class:`RegistryWatcher` polls every
    ``settings.registry_poll_s`` seconds once the model is ready and calls ``service.reload(path)``
    (the serving hot swap: no request fails) whenever the alias moves. A fixed version is served as is.
    """
    from prognos.errors import NotFoundError
    from prognos.lifecycle.registry import ALIASES, open_registry

    source: AliasSource
    if ref.startswith("models:/"):
        from prognos.lifecycle.tracking import MlflowAliases, resolve_model_uri

        name, at, alias = ref[len("models:/") :].partition("@")
        if not at:  # a fixed MLflow version
            path = resolve_model_uri(ref, settings.mlflow_uri, settings.registry_cache)
            return FollowedModel(settings.model_copy(update={"bundle": path}), hooks, ref)
        source, where = MlflowAliases(settings.mlflow_uri, name, settings.registry_cache), settings.mlflow_uri
        followed_alias = alias
        target = source.alias(alias)
        if target is None:
            raise NotFoundError(f"{ref}: not found in MLflow at {settings.mlflow_uri}")
        version = target.version
    else:
        registry = open_registry(settings.registry_location, settings.registry_cache)
        source, where, followed_alias = registry, registry.store.url, ref
        version = registry.get(ref).version  # NotFoundError names the alias if it is unset
    settings = settings.model_copy(update={"bundle": source.fetch(version)})
    if not ref.startswith("models:/") and ref not in ALIASES:
        return FollowedModel(settings, hooks, str(version))
    tasks: list[asyncio.Task[None]] = []

    async def start(service: PredictionService) -> None:
        watcher = RegistryWatcher(source, followed_alias, service.reload, interval_s=settings.registry_poll_s,
                                  current=version)
        tasks.append(asyncio.create_task(watcher.run(), name=f"model-watch-{ref}"))
        log.info("following model alias %r at %s (version %s)", followed_alias, where, version)

    async def stop(service: PredictionService) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    from dataclasses import replace

    followed = replace(hooks, on_startup=(*hooks.on_startup, start), on_shutdown=(stop, *hooks.on_shutdown))
    return FollowedModel(settings, followed, str(version))
