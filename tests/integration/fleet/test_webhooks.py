"""Webhooks against a real HTTP receiver on 127.0.0.1: retries with exponential back-off, give-up,
and ingestion that does not wait for a slow receiver."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prognos.config import Settings
from prognos.fleet.notify import WebhookNotifier
from prognos.fleet.records import AlertChange, AlertRecord
from prognos.fleet.tables import utcnow
from tests.integration.fleet.conftest import start_live_app
from tests.integration.fleet.readings import engine_readings
from tests.integration.fleet.test_alerts_api import service_with


@dataclass
class Receiver:
    """Answers ``statuses`` in turn (then 200), after ``delay_s``; records every request."""

    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    url: str = ""

    def wait_for(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n:
            assert time.monotonic() < deadline, f"got {len(self.received)} of {n} webhook requests"
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rec.received.append((time.monotonic(), body))
            time.sleep(rec.delay_s)
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def change(alert_id: int = 1) -> AlertChange:
    now = utcnow()
    return AlertChange("opened", AlertRecord(alert_id, "e1", "rul_low", "critical", "open", "RUL low", {}, now, now,
                                             None, None, None, None))


def test_retries_with_exponential_backoff_until_delivered(receiver: Receiver) -> None:
    receiver.statuses = [503, 500, 200]

    async def run() -> WebhookNotifier:
        n = WebhookNotifier([receiver.url], max_attempts=5, backoff_s=0.1)
        await n.start()
        n.notify(change(7))
        await asyncio.to_thread(receiver.wait_for, 3)
        await n.stop()
        return n

    n = asyncio.run(run())
    times = [t for t, _ in receiver.received]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.1 s, then doubled
    # every attempt carries the same JSON: the event and the alert as the API shows it
    assert all(body == change(7).to_dict() | {"alert": body["alert"]} and body["alert"]["id"] == 7
               for _, body in receiver.received)
    assert receiver.received[0][1]["alert"]["severity"] == "critical"
    assert (n.stats.delivered, n.stats.failed, n.stats.attempts) == (1, 0, 3)


def test_gives_up_after_max_attempts_and_does_not_retry_a_4xx(receiver: Receiver) -> None:
    receiver.statuses = [500, 500, 500, 400]

    async def run() -> WebhookNotifier:
        n = WebhookNotifier([receiver.url], max_attempts=3, backoff_s=0.05)
        await n.start()
        n.notify(change(1))
        await asyncio.to_thread(receiver.wait_for, 3)
        n.notify(change(2))  # gets the 400: final at once
        await asyncio.to_thread(receiver.wait_for, 4)
        await n.stop()
        return n

    n = asyncio.run(run())
    assert (n.stats.delivered, n.stats.failed, n.stats.attempts) == (0, 2, 4)
    assert "HTTP 400" in (n.stats.last_error or "")


def test_unreachable_receiver_is_retried_then_reported() -> None:
    async def run() -> WebhookNotifier:
        n = WebhookNotifier(["http://127.0.0.1:9/nothing-listens"], max_attempts=2, backoff_s=0.01, timeout_s=1)
        await n.start()
        n.notify(change())
        deadline = time.monotonic() + 10
        while n.stats.failed == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        await n.stop()
        return n

    n = asyncio.run(run())
    assert n.stats.attempts == 2 and "ConnectError" in (n.stats.last_error or "")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_alert_webhook_from_ingestion_without_waiting_for_a_slow_receiver(receiver: Receiver,
                                                                          fleet_settings: Settings,
                                                                          tiny_bundle: Path) -> None:
    receiver.delay_s = 2.0  # a receiver that takes 2 s per request
    settings = fleet_settings.model_copy(update={"webhook_urls": [receiver.url]})
    notifier = WebhookNotifier(settings.webhook_urls, max_attempts=2, backoff_s=0.05)
    app = start_live_app(settings, service_with(settings, tiny_bundle, 5.0), notifier=notifier)
    try:
        with app.client(app.key("operator")) as c:
            started = time.monotonic()
            c.post("/api/v1/engines/e9/readings", json=engine_readings()[:30]).raise_for_status()
            took = time.monotonic() - started
        receiver.wait_for(1)
    finally:
        app.stop()
    assert took < 1.5  # answered before the receiver finished with the alert
    [(_, body)] = receiver.received
    assert body["event"] == "opened" and body["alert"]["engine_id"] == "e9" and body["alert"]["kind"] == "rul_low"
