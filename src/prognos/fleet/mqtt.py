"""MQTT telemetry ingestion: a QoS 1 subscriber feeding the fleet's one :class:`~prognos.fleet.Ingestor`.

Topics (``PREFIX`` is ``mqtt_topic_prefix``, default ``prognos``)::

    PREFIX/engines/{engine_id}/readings   in:  the REST /readings body (one reading object or a list), QoS 1
    PREFIX/errors                         out: one JSON object per refused message (QoS 1, not retained)

A message goes through exactly what ``POST /api/v1/engines/{id}/readings`` does: JSON decode ->
``Ingestor.ingest`` (the one validator, the group committer, scoring, alerts). Delivery is
at-least-once and made safe by the store's idempotency on (engine, cycle): a redelivered message
is counted as duplicates, a resend with other values is a conflict.

Acknowledgement: the PUBACK of a message is sent only after its readings are committed (paho's
``manual_ack``), and in the order the messages arrived (MQTT 3.1.1 §4.6). The session is
persistent (``clean_session=False``, a fixed ``mqtt_client_id``): what arrives while the
subscriber is away, or was delivered but not yet acknowledged when it went, is delivered again
on reconnect. So a reading the broker acknowledged to its publisher is stored even across a
subscriber or (with broker persistence) a broker restart.

Refusals: a message the ingestor refuses as the sender's mistake (bad JSON, bad engine id, a
reading breaking the contract, a conflicting resend: any 4xx error) is published on the error
topic with the validator's message and acknowledged; the subscriber goes on. A failure that is
not the message's fault (the database is down) is retried with back-off, holding the
acknowledgement, until it succeeds or the subscriber stops (then the broker redelivers).

Authentication is the broker's: publishers need broker credentials (and ACLs on the topics);
prognos connects with ``mqtt_username``/``mqtt_password``, optionally over TLS
(``mqtt_tls``, ``mqtt_ca_file``, ``mqtt_cert_file``/``mqtt_key_file``). Reconnects use paho's
exponential back-off between ``mqtt_reconnect_min_s`` and ``mqtt_reconnect_max_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prognos.config import Settings
from prognos.data.validation import parse_json_off_loop, shown
from prognos.errors import ConfigError, PrognosError, ValidationError

__all__ = ["MqttCounters", "MqttPublisher", "MqttSubscriber", "ReplaySummary", "error_topic", "mqtt_hooks",
           "readings_topic", "replay", "replay_readings", "run_headless", "subscribe_errors", "topic_engine"]

log = logging.getLogger("prognos.fleet.mqtt")


class _Ingestor(Protocol):
    async def ingest(self, engine_id: str, readings: Any) -> Any: ...


def readings_topic(prefix: str, engine_id: str) -> str:
    return f"{prefix}/engines/{engine_id}/readings"


def error_topic(prefix: str) -> str:
    return f"{prefix}/errors"


def topic_engine(prefix: str, topic: str) -> str:
    """The engine id of a readings topic. Raises :class:`ValidationError` for any other topic."""
    head, tail = f"{prefix}/engines/", "/readings"
    if not (topic.startswith(head) and topic.endswith(tail)) or len(topic) <= len(head) + len(tail):
        raise ValidationError(f"topic {shown(topic)}: not {readings_topic(prefix, '{engine_id}')}")
    return topic[len(head):-len(tail)]


def _client(settings: Settings, client_id: str, *, clean_session: bool, manual_ack: bool) -> Any:
    """A paho client with the credentials, TLS and back-off of ``settings`` (not connected)."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise ConfigError("MQTT needs paho-mqtt: pip install 'prognos[mqtt]'") from None
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=mqtt.MQTTv311, manual_ack=manual_ack)
    if settings.mqtt_username is not None:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_tls or settings.mqtt_ca_file is not None:
        for name in ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file"):
            path = getattr(settings, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"{name} (PROGNOS_{name.upper()}): {path} is not a file")
        client.tls_set(ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
                       certfile=str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
                       keyfile=str(settings.mqtt_key_file) if settings.mqtt_key_file else None,
                       cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(settings.mqtt_reconnect_min_s, max(settings.mqtt_reconnect_min_s,
                                                                  settings.mqtt_reconnect_max_s))
    return client


@dataclass
class MqttCounters:
    """Totals since start (messages, not readings, except ``accepted``/``duplicates``)."""

    received: int = 0
    stored: int = 0  # messages committed (including all-duplicate ones)
    accepted: int = 0  # readings newly stored
    duplicates: int = 0  # readings that were stored already (redeliveries, resends)
    refused: int = 0  # messages sent to the error topic
    retries: int = 0  # attempts repeated after a failure that was not the message's fault
    connects: int = 0


@dataclass
class _Slot:
    """One received message waiting for its PUBACK (sent in arrival order, after its commit)."""

    mid: int
    qos: int
    session: int
    done: bool = False


@dataclass
class MqttSubscriber:
    """Subscribe to ``PREFIX/engines/+/readings`` and ingest every message through ``ingestor``.

    Runs on the caller's event loop (where the ingestor and its group committer live); paho's
    network thread only hands messages over. ``max_attempts_unexpected`` bounds retries of a
    message that fails with an error which is neither the sender's mistake nor a database error.
    """

    settings: Settings
    ingestor: _Ingestor
    max_attempts_unexpected: int = 5
    # Messages ingested at once. The broker may deliver far more unacknowledged messages than
    # that; the rest wait here in arrival order, so each reading is scored soon after it is stored
    # instead of every reading being stored first and scored last.
    max_concurrent: int = 64
    counters: MqttCounters = field(default_factory=MqttCounters)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.prefix = self.settings.mqtt_topic_prefix
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: deque[_Slot] = deque()
        self._session = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._admit: asyncio.Semaphore | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect (in the background: an unreachable broker is retried with back-off) and subscribe."""
        self._loop = asyncio.get_running_loop()
        client = _client(self.settings, self.settings.mqtt_client_id, clean_session=False, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        client.loop_start()
        log.info("mqtt subscriber started", extra={"broker": f"{self.settings.mqtt_host}:{self.settings.mqtt_port}"})

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let messages in progress finish (and be acknowledged), then disconnect. Anything not
        acknowledged is redelivered to the next session."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused: %s", reason)
            return
        client.subscribe(f"{self.prefix}/engines/+/readings", qos=1)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected)

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        assert self._loop is not None
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._disconnected, str(reason))

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._accept, message.topic, bytes(message.payload), message.mid, message.qos)

    # ------------------------------------------------------------------ event loop side
    def _connected(self) -> None:
        self._session += 1
        self.counters.connects += 1
        self.connected.set()
        log.info("mqtt connected (session %d)", self._session)

    def _disconnected(self, reason: str) -> None:
        # PUBACKs belong to a connection: the broker redelivers whatever this one did not acknowledge.
        self._slots.clear()
        self.connected.clear()
        if not self._stopping:
            log.warning("mqtt connection lost (%s); reconnecting with back-off", reason)

    def _accept(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.counters.received += 1
        slot = _Slot(mid, qos, self._session)
        if qos > 0:
            self._slots.append(slot)
        task = asyncio.get_running_loop().create_task(self._handle(topic, payload, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, topic: str, payload: bytes, slot: _Slot) -> None:
        if self._admit is None:
            self._admit = asyncio.Semaphore(self.max_concurrent)
        async with self._admit:
            await self._ingest(topic, payload, slot)

    async def _ingest(self, topic: str, payload: bytes, slot: _Slot) -> None:
        delay, attempt = float(self.settings.mqtt_reconnect_min_s) / 4, 0
        while True:
            attempt += 1
            try:
                engine_id = topic_engine(self.prefix, topic)
                # REST's parser (linear time; off the loop when large): depth limit, no duplicate keys
                body = await parse_json_off_loop(payload, where="payload")
                result = await self.ingestor.ingest(engine_id, body)
                self.counters.stored += 1
                self.counters.accepted += int(getattr(result, "accepted", 0))
                self.counters.duplicates += int(getattr(result, "duplicates", 0))
                break
            except PrognosError as exc:
                if exc.http_status < 500:  # the sender's mistake: resending it would not help
                    self._refuse(topic, exc)
                    break
                reason: BaseException = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not _is_database_error(exc) and attempt >= self.max_attempts_unexpected:
                    log.exception("mqtt message on %s failed %d times; refused", topic, attempt)
                    self._refuse(topic, exc)
                    break
                reason = exc
            if self._stopping:
                return  # not acknowledged: the broker redelivers it to the next session
            self.counters.retries += 1
            log.warning("mqtt message on %s not stored (%s); retrying in %.2f s", topic, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, float(self.settings.mqtt_reconnect_max_s))
        slot.done = True
        self._ack_ready()

    def _ack_ready(self) -> None:
        while self._slots and self._slots[0].done:
            slot = self._slots.popleft()
            if slot.session == self._session and self._client is not None:
                self._client.ack(slot.mid, slot.qos)

    def _refuse(self, topic: str, exc: BaseException) -> None:
        self.counters.refused += 1
        status = exc.http_status if isinstance(exc, PrognosError) else 500
        message = str(exc) if isinstance(exc, PrognosError) else f"internal error ({type(exc).__name__})"
        body = {"topic": topic, "status": status, "error": message, "error_type": type(exc).__name__,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        log.info("mqtt message refused: %s: %s", shown(topic, 160), shown(message, 400)[1:-1])
        if self._client is not None:
            self._client.publish(error_topic(self.prefix), json.dumps(body), qos=1)


def _is_database_error(exc: BaseException) -> bool:
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover - sqlalchemy is a base dependency
        return False
    return isinstance(exc, DBAPIError | OperationalError)


class MqttPublisher:
    """A blocking QoS 1 publisher of readings (``prognos simulate --mqtt``, the benchmarks, tests).

    :meth:`publish` queues a message (paho resends it after a reconnect); :meth:`flush` waits
    until the broker has acknowledged everything published so far. ``acknowledged`` counts PUBACKs.
    """

    def __init__(self, settings: Settings, client_id: str = "", *, max_in_flight: int = 100) -> None:
        self.prefix = settings.mqtt_topic_prefix
        self._client = _client(settings, client_id, clean_session=True, manual_ack=False)
        self._client.max_inflight_messages_set(max_in_flight)
        self._lock = threading.Lock()
        self._pending: dict[int, Callable[[], None] | None] = {}
        self._early: set[int] = set()
        self.acknowledged = 0
        self._connected = threading.Event()
        self._client.on_publish = self._on_publish
        self._client.on_connect = lambda *a: self._connected.set()
        self._client.on_disconnect = lambda *a: self._connected.clear()
        self._client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float = 10.0) -> None:
        if not self._connected.wait(timeout_s):
            raise ConfigError(f"MQTT broker not reachable within {timeout_s:g} s")

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _props: Any = None) -> None:
        # paho's thread. Never call into paho while holding self._lock (paho's own locks are taken
        # in the other order on the publishing thread).
        with self._lock:
            self.acknowledged += 1
            if mid not in self._pending:  # acknowledged before publish() registered it
                self._early.add(mid)
                return
            callback = self._pending.pop(mid)
        if callback is not None:
            callback()

    def _register(self, mid: int, on_ack: Callable[[], None] | None) -> None:
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
            else:
                self._pending[mid] = on_ack
                return
        if on_ack is not None:
            on_ack()

    def publish(self, engine_id: str, readings: Sequence[Mapping[str, Any]] | Mapping[str, Any], *,
                on_ack: Callable[[], None] | None = None) -> Any:
        """Queue one message on the engine's readings topic; ``on_ack`` runs on its PUBACK."""
        payload = json.dumps(readings if isinstance(readings, Mapping) else list(readings))
        info = self._client.publish(readings_topic(self.prefix, engine_id), payload, qos=1)
        self._register(info.mid, on_ack)
        return info

    def publish_raw(self, topic: str, payload: bytes | str) -> Any:
        info = self._client.publish(topic, payload, qos=1)
        self._register(info.mid, None)
        return info

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every message published so far is acknowledged by the broker."""
        deadline = time.monotonic() + timeout_s
        while self.in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} MQTT message(s) not acknowledged within {timeout_s:g} s")
            time.sleep(0.01)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe_errors(settings: Settings, sink: Callable[[dict[str, Any]], None], client_id: str = "") -> Any:
    """Listen on the error topic (tests, operators' tools): ``sink`` gets each decoded error object.
    Returns the running paho client; call ``.disconnect()`` and ``.loop_stop()`` to end."""
    client = _client(settings, client_id, clean_session=True, manual_ack=False)
    topic = error_topic(settings.mqtt_topic_prefix)
    client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, m: sink(json.loads(m.payload))
    client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    client.loop_start()
    return client


def mqtt_hooks(settings: Settings, ingestor: _Ingestor) -> Any:
    """:class:`~prognos.serving.hooks.ServerHooks` that run a subscriber inside ``prognos serve
    --mqtt``: started once the model is ready, stopped (acknowledging what it finished) first."""
    from prognos.serving.hooks import ServerHooks

    subscriber = MqttSubscriber(settings, ingestor)

    async def on_startup(_: Any) -> None:
        await subscriber.start()

    async def on_shutdown(_: Any) -> None:
        await subscriber.stop(settings.shutdown_grace_s)

    return ServerHooks(on_startup=[on_startup], on_shutdown=[on_shutdown])


def replay(settings: Settings, batches: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], *,
           speed: float = 0.0, stop: threading.Event | None = None,
           on_progress: Callable[[int, int], None] | None = None) -> int:
    """Publish ``(engine_id, readings)`` steps in order (``prognos simulate --mqtt``): each step is
    one message; ``speed`` > 0 paces steps at that many per second. Returns the messages the
    broker acknowledged (all of them unless stopped)."""
    with MqttPublisher(settings, max_in_flight=200) as pub:
        pub.wait_connected()
        started = time.monotonic()
        for i, (engine_id, rows) in enumerate(batches):
            if stop is not None and stop.is_set():
                break
            if speed > 0:
                delay = started + i / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            while pub.in_flight > 1000:  # bounded memory: wait for the broker to catch up
                time.sleep(0.005)
            pub.publish(engine_id, rows)
            if on_progress is not None and (i + 1) % 1000 == 0:
                on_progress(i + 1, pub.acknowledged)
        pub.flush(120)
        return pub.acknowledged


async def run_headless(settings: Settings, service: Any, hooks: Any) -> None:
    """Load the model (or reach the inference pool), run ``hooks``' start-up, wait for SIGTERM /
    SIGINT, then shut down in reverse: the ``prognos mqtt`` process, without front ends."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.reload(settings.bundle)
        for hook in hooks.on_startup:
            await hook(service)
        await stop.wait()
    finally:
        service.begin_shutdown()
        for hook in hooks.on_shutdown:
            await hook(service)
        await service.close()


@dataclass(frozen=True)
class ReplaySummary:
    engines: int
    messages: int
    acknowledged: int
    seconds: float

    def describe(self) -> str:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        return (f"published {self.messages} readings of {self.engines} engines over MQTT in {self.seconds:.1f} s "
                f"({rate:.0f}/s); {self.acknowledged} acknowledged by the broker")


def replay_readings(settings: Settings, readings: Any, *, speed: float = 0.0, max_cycles: int | None = None,
                    stop: threading.Event | None = None) -> ReplaySummary:
    """``prognos simulate --mqtt``: publish a fleet (:class:`~prognos.data.cmapss.Readings`) cycle by
    cycle, one message per engine and cycle, interleaving engines as a live fleet reports;
    ``speed`` is cycles per second per engine (0: as fast as the broker acknowledges)."""
    import math

    from prognos.data.schema import MEASUREMENT_FIELDS

    engines = list(readings.engines())
    steps: list[tuple[str, Sequence[Mapping[str, Any]]]] = []
    longest = max((len(e.cycles) for e in engines), default=0)
    for k in range(min(longest, max_cycles or longest)):
        for e in engines:
            if k < len(e.cycles):
                row: dict[str, Any] = {"cycle": int(e.cycles[k])}
                row.update({f: float(v) for f, v in zip(MEASUREMENT_FIELDS, e.values[k], strict=True)
                            if not math.isnan(v)})
                steps.append((str(e.engine_id), [row]))
    started = time.monotonic()
    acknowledged = replay(settings, steps, speed=speed * len(engines), stop=stop)
    return ReplaySummary(len(engines), len(steps), acknowledged, time.monotonic() - started)
