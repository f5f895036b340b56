"""Announcing alert changes: the :class:`Notifier` seam, webhooks over HTTP, and a fake.

``notify`` never blocks and never raises: ingestion calls it after its commit, and a slow or dead
webhook receiver must not slow ingestion. :class:`WebhookNotifier` queues each change and a
background task POSTs it as JSON to every URL, retrying with exponential back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from prognos.fleet.records import AlertChange

__all__ = ["FakeNotifier", "Notifier", "WebhookNotifier", "WebhookStats"]

log = logging.getLogger("prognos.fleet")


class Notifier(Protocol):
    def notify(self, change: AlertChange) -> None:
        """Queue ``change`` for delivery; returns at once."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class FakeNotifier:
    """Keeps every change in ``changes`` (for tests and for servers without webhooks)."""

    def __init__(self) -> None:
        self.changes: list[AlertChange] = []

    def notify(self, change: AlertChange) -> None:
        self.changes.append(change)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0  # gave up after the last attempt
    attempts: int = 0
    dropped: int = 0  # queue full
    last_error: str | None = None
    errors: list[str] = field(default_factory=list)


class WebhookNotifier:
    """POST ``{"event": ..., "alert": {...}}`` to each URL; up to ``max_attempts`` tries, waiting
    ``backoff_s``, 2x, 4x ... seconds (s) between them. 2xx is success; 4xx other than 408/429 is
    final (the receiver rejects the payload, retrying cannot help)."""

    def __init__(self, urls: list[str], *, max_attempts: int = 5, backoff_s: float = 0.5, timeout_s: float = 5.0,
                 max_queue: int = 10_000, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.urls = list(urls)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.stats = WebhookStats()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._worker: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def notify(self, change: AlertChange) -> None:
        if not self.urls:
            return
        try:
            self._queue.put_nowait(change.to_dict())
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.warning("webhook queue full; dropped %s alert %d", change.event, change.alert.id)

    async def start(self) -> None:
        if self._worker is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport)
            self._worker = asyncio.create_task(self._run(), name="prognos-webhooks")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Deliver what is queued (up to ``grace_s`` seconds), then close."""
        if self._worker is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace_s)
        self._worker.cancel()
        pending = list(self._deliveries)
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace_s)
            for task in still:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        assert self._client is not None
        await self._client.aclose()
        self._worker = self._client = None

    async def _run(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                for url in self.urls:
                    # One task per delivery: a receiver being retried does not hold up the others.
                    task = asyncio.create_task(self._deliver(url, payload))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
            finally:
                self._queue.task_done()

    async def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        assert self._client is not None
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            self.stats.attempts += 1
            try:
                resp = await self._client.post(url, json=payload)
                if resp.is_success:
                    self.stats.delivered += 1
                    return
                error = f"{url}: HTTP {resp.status_code}"
                final = 400 <= resp.status_code < 500 and resp.status_code not in (408, 429)
            except httpx.HTTPError as exc:
                error, final = f"{url}: {type(exc).__name__}: {exc}", False
            self.stats.last_error = error
            if final or attempt == self.max_attempts:
                break
            log.info("webhook attempt %d failed (%s); retrying in %.1f s", attempt, error, delay)
            await asyncio.sleep(delay)
            delay *= 2
        self.stats.failed += 1
        self.stats.errors.append(error)
        log.warning("webhook delivery failed after %d attempt(s): %s", attempt, error)
