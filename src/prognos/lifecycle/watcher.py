"""Follow a registry alias: when ``production`` moves, fetch the new bundle and hand its path over.

The serving process wires the callback to its hot swap (``PredictionService.reload(path)``), so a
server started with ``--model production`` follows promotions and rollbacks without a restart::

    watcher = RegistryWatcher(registry, "production", service.reload, interval_s=settings.registry_poll_s)
    watcher.start()          # a daemon thread; or ``await watcher.run()`` inside an event loop
    ...
    watcher.stop()

A failed fetch (tampered artifact, store unreachable) is logged and retried at the next poll; the
model being served is kept meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prognos.errors import PrognosError
from prognos.lifecycle.registry import Registry

__all__ = ["AliasTarget", "RegistryWatcher"]

log = logging.getLogger("prognos.lifecycle")

Callback = Callable[[Path], object]


@dataclass(frozen=True)
class AliasTarget:
    """What an alias resolved to: the version number and the verified local bundle path."""

    version: int
    path: Path


class RegistryWatcher:
    """Polls ``registry`` every ``interval_s`` seconds and calls ``on_change(path)`` when ``alias`` moves."""

    def __init__(self, registry: Registry, alias: str, on_change: Callback, *, interval_s: float = 5.0,
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
            if target is not None:
                result = self.on_change(target.path)
                if inspect.isawaitable(result):
                    raise TypeError("on_change returned an awaitable: use `await watcher.run()` for async callbacks")
                self._moved(target)
            return target
        except (PrognosError, OSError) as exc:
            self.errors += 1
            log.warning("registry alias %r: keeping version %s: %s", self.alias, self.current, exc)
            return None

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
            except (PrognosError, OSError) as exc:
                self.errors += 1
                log.warning("registry alias %r: keeping version %s: %s", self.alias, self.current, exc)

