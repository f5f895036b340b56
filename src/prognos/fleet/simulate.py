"""Live replay of a fleet into a running prognos server: each engine sends its readings cycle by
cycle (``POST /api/v1/engines/{id}/readings``), many engines at once.

Timing: engine *i* sends cycle *k* (1-based position in its series) at ``start_i + (k-1) / speed``
seconds, ``speed`` in cycles per second per engine (``speed <= 0``: as fast as the server takes
them). An engine that falls behind schedule — a slow server — catches up by sending every cycle
that is due in one request (at most ``batch_max`` readings), so the replay keeps wall-clock pace
without opening more connections. At most ``concurrency`` requests are in flight.

Failures: 429/502/503/504 and connection errors are retried with exponential back-off (doubling
from ``backoff_s``, with jitter, honouring ``Retry-After``); 401/403 stop the whole replay (a bad
or under-privileged key will not get better); any other 4xx stops that engine and is reported.
Setting ``stop`` (a :class:`threading.Event`, so Ctrl-C handlers and other threads can use it)
ends the replay after the requests in flight, and the summary says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from prognos.data.cmapss import EngineSeries, Readings, load_subset, subset_name
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.errors import RemoteError

__all__ = [
    "LivingFleet",
    "SimulationError",
    "SimulationSummary",
    "Unit",
    "living_units",
    "load_replay_fleet",
    "reading_payload",
    "simulate",
    "simulate_async",
    "simulate_living",
    "simulate_living_async",
]

log = logging.getLogger("prognos.fleet.simulate")

_RETRY_STATUS = frozenset({429, 502, 503, 504})
_MAX_BACKOFF_S = 10.0
_ERRORS_KEPT = 20  # the summary lists the first few distinct problems, not thousands


class SimulationError(RemoteError):
    """The replay could not run: unreachable server, rejected key, unreadable input."""

    exit_code = 8


@dataclass
class SimulationSummary:
    """What a replay did. Counts are readings unless named otherwise; ``elapsed_s`` in seconds."""

    engines: int
    engines_done: int = 0
    engines_failed: int = 0
    readings_total: int = 0
    readings_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    requests: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    stopped: bool = False
    fatal: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def readings_per_s(self) -> float:
        return self.readings_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.fatal is None and self.engines_failed == 0 and self.rejected == 0

    def note(self, message: str) -> None:
        if len(self.errors) < _ERRORS_KEPT and message not in self.errors:
            self.errors.append(message)

    def describe(self) -> str:
        """A few lines for people (the CLI prints them)."""
        state = "stopped early" if self.stopped else ("aborted" if self.fatal else "finished")
        lines = [
            f"replay {state} after {self.elapsed_s:.1f} s: {self.engines_done}/{self.engines} engines complete"
            + (f", {self.engines_failed} failed" if self.engines_failed else ""),
            f"readings: {self.readings_sent}/{self.readings_total} sent, {self.accepted} accepted, "
            f"{self.duplicates} duplicates, {self.rejected} rejected ({self.readings_per_s:.0f}/s)",
            f"requests: {self.requests}, retries: {self.retries}",
        ]
        if self.fatal:
            lines.append(f"error: {self.fatal}")
        lines += [f"problem: {e}" for e in self.errors]
        return "\n".join(lines)


def reading_payload(cycle: int, values: np.ndarray) -> dict[str, Any]:
    """One reading as the ingestion API takes it; channels missing from the source (NaN) are left out."""
    out: dict[str, Any] = {"cycle": int(cycle)}
    for name, v in zip(MEASUREMENT_FIELDS, values, strict=True):
        if not math.isnan(v):
            out[name] = float(v)
    return out


def load_replay_fleet(
    *, dataset: str = "FD001", split: str = "test", data_dir: Path | None = None, engines: int | None = None,
    synthetic: int | None = None, seed: int = 0, prefix: str | None = None,
) -> Readings:
    """The fleet to replay, with engine ids made unique per source.

    C-MAPSS unit ``7`` of ``test_FD001`` becomes ``FD001-test-7``; synthetic engine 3 becomes
    ``SYN-3`` (``prefix`` replaces ``FD001-test-`` / ``SYN-``). ``engines`` keeps the first N.
    """
    if synthetic is not None:
        if synthetic < 1:
            raise SimulationError(f"--synthetic must be at least 1, got {synthetic}")
        from prognos.data.synthetic import synthetic_fleet

        fleet = synthetic_fleet(synthetic, seed=seed, id_prefix="SYN-" if prefix is None else prefix)
    else:
        if split not in ("train", "test"):
            raise SimulationError(f"--split must be train or test, not {split!r}")
        if data_dir is None:
            raise SimulationError("no C-MAPSS data: pass --data-dir, set PROGNOS_CMAPSS_DIR, or use --synthetic N")
        name = subset_name(dataset)
        subset = load_subset(data_dir, name, with_test=split == "test")
        source = subset.train if split == "train" else subset.test
        if source is None:
            raise SimulationError(f"{data_dir}: no test_{name}.txt to replay")
        tag = f"{name}-{split}-" if prefix is None else prefix
        fleet = Readings(np.char.add(tag, source.engine_ids.astype(str)), source.cycles, source.values, source.source)
    if engines is not None:
        if engines < 1:
            raise SimulationError(f"--engines must be at least 1, got {engines}")
        keep = [e.engine_id for e in fleet.engines()][:engines]
        fleet = fleet.select(set(keep))
    return fleet


@dataclass(frozen=True)
class _Options:
    speed: float
    batch_max: int
    max_retries: int
    backoff_s: float
    stop: threading.Event  # set by callers (any thread) or by a fatal answer
    woken: asyncio.Event  # mirrors ``stop`` inside the loop, so sleepers wake at once


async def simulate_async(
    url: str, api_key: str | None, fleet: Readings, *, speed: float = 1.0, concurrency: int = 16,
    max_cycles: int | None = None, batch_max: int = 50, max_retries: int = 8, backoff_s: float = 0.25,
    timeout_s: float = 30.0, stop: threading.Event | None = None, progress_every_s: float = 5.0,
    on_progress: Callable[[SimulationSummary], None] | None = None, transport: httpx.AsyncBaseTransport | None = None,
) -> SimulationSummary:
    """Replay ``fleet`` into the server at ``url`` (see the module docstring). Never raises for
    HTTP problems: they end up in the returned summary (``fatal`` for a replay-ending one)."""
    if concurrency < 1 or batch_max < 1 or max_retries < 0:
        raise SimulationError("concurrency and batch_max must be at least 1, max_retries at least 0")
    if max_cycles is not None and max_cycles < 1:
        raise SimulationError(f"--max-cycles must be at least 1, got {max_cycles}")
    series = [s if max_cycles is None else EngineSeries(s.engine_id, s.cycles[:max_cycles], s.values[:max_cycles])
              for s in fleet.engines()]
    summary = SimulationSummary(engines=len(series), readings_total=sum(len(s) for s in series))
    opts = _Options(speed, batch_max, max_retries, backoff_s, stop or threading.Event(), asyncio.Event())
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s, limits=limits,
                                 transport=transport) as client:
        helpers = [asyncio.create_task(_watch_stop(opts))]
        if on_progress:
            helpers.append(asyncio.create_task(_report(summary, started, progress_every_s, on_progress)))
        try:
            await asyncio.gather(*(_replay_engine(client, sem, s, opts, summary, i) for i, s in enumerate(series)))
        finally:
            for task in helpers:
                task.cancel()
    summary.elapsed_s = time.monotonic() - started
    summary.stopped = opts.stop.is_set() and summary.fatal is None and summary.readings_sent < summary.readings_total
    return summary


def simulate(url: str, api_key: str | None, fleet: Readings, **kwargs: Any) -> SimulationSummary:
    """Blocking :func:`simulate_async`. Safe to call from a thread that already runs an event loop
    (a notebook, Playwright's sync API): the replay then gets a loop on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(simulate_async(url, api_key, fleet, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prognos-simulate") as pool:
        return pool.submit(lambda: asyncio.run(simulate_async(url, api_key, fleet, **kwargs))).result()


async def _report(summary: SimulationSummary, started: float, every_s: float,
                  on_progress: Callable[[SimulationSummary], None]) -> None:
    while True:
        await asyncio.sleep(every_s)
        on_progress(replace(summary, elapsed_s=time.monotonic() - started, errors=list(summary.errors)))


async def _watch_stop(opts: _Options) -> None:
    # A threading.Event cannot be awaited: one task looks at it and wakes every sleeper, rather
    # than thousands of engines polling it.
    while not opts.stop.is_set():
        await asyncio.sleep(0.05)
    opts.woken.set()


async def _sleep_unless_stopped(seconds: float, opts: _Options) -> None:
    if seconds <= 0 or opts.stop.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(opts.woken.wait(), seconds)


async def _replay_engine(client: httpx.AsyncClient, sem: asyncio.Semaphore, s: EngineSeries, opts: _Options,
                         summary: SimulationSummary, index: int, start: float | None = None) -> bool:
    """Replay one series; True when all of it was sent. ``start``: when its first cycle was due
    (monotonic seconds; in the past, the engine catches up in batches)."""
    n = len(s)
    path = f"/api/v1/engines/{quote(s.engine_id, safe='')}/readings"
    if start is None:
        # Spread engine start times over one cycle period so requests do not arrive in bursts.
        start = time.monotonic() + (random.Random(index).random() / opts.speed if opts.speed > 0 else 0.0)
    sent = 0
    while sent < n and not opts.stop.is_set():
        if opts.speed > 0:
            due = min(n, int((time.monotonic() - start) * opts.speed) + 1)
            if due <= sent:
                await _sleep_unless_stopped(start + sent / opts.speed - time.monotonic(), opts)
                continue
        else:
            due = n
        stop_at = min(due, sent + opts.batch_max)
        body = [reading_payload(c, v) for c, v in zip(s.cycles[sent:stop_at], s.values[sent:stop_at], strict=True)]
        async with sem:
            if opts.stop.is_set():  # stopped while this engine queued for a connection
                break
            ok = await _post(client, path, s.engine_id, body, opts, summary)
        if not ok:
            # A stop (Ctrl-C, or a fatal answer to another engine) is not this engine's failure.
            if not opts.stop.is_set():
                summary.engines_failed += 1
            return False
        sent = stop_at
    if sent >= n:
        summary.engines_done += 1
    return sent >= n


async def _post(client: httpx.AsyncClient, path: str, engine_id: str, body: list[dict[str, Any]], opts: _Options,
                summary: SimulationSummary) -> bool:
    """Send one batch, retrying what may succeed later. True when the server took it."""
    delay = opts.backoff_s
    for attempt in range(opts.max_retries + 1):
        if attempt:
            summary.retries += 1
            await _sleep_unless_stopped(delay * (0.5 + random.random()), opts)
            delay = min(delay * 2, _MAX_BACKOFF_S)
            if opts.stop.is_set():
                return False
        summary.requests += 1
        try:
            r = await client.post(path, json=body)
        except httpx.TransportError as exc:
            problem = f"{engine_id}: {type(exc).__name__}: {exc or 'no response'}"
            if attempt == opts.max_retries:
                summary.note(problem)
            continue
        if r.status_code < 300:
            summary.readings_sent += len(body)
            _count(r, len(body), summary)
            return True
        if r.status_code in _RETRY_STATUS:
            retry_after = r.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                delay = min(max(delay, float(retry_after)), _MAX_BACKOFF_S)
            if attempt == opts.max_retries:
                summary.note(f"{engine_id}: HTTP {r.status_code} after {opts.max_retries} retries: {_detail(r)}")
            continue
        if r.status_code in (401, 403):
            summary.fatal = summary.fatal or f"HTTP {r.status_code} from {path}: {_detail(r)}"
            summary.engines_failed += 1
            opts.stop.set()
            return False
        summary.rejected += len(body)
        summary.readings_sent += len(body)
        summary.note(f"{engine_id} cycles {body[0]['cycle']}-{body[-1]['cycle']}: HTTP {r.status_code}: {_detail(r)}")
        return False
    return False


def _count(r: httpx.Response, n: int, summary: SimulationSummary) -> None:
    try:
        data = r.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("accepted"), int):
        summary.accepted += data["accepted"]
        summary.duplicates += int(data.get("duplicates") or 0)
    else:
        summary.accepted += n


def _detail(r: httpx.Response) -> str:
    try:
        data = r.json()
    except ValueError:
        return r.text[:200] or r.reason_phrase
    if isinstance(data, dict):
        d = data.get("detail", data.get("error", data))
        if isinstance(d, dict):
            d = d.get("message", d)
        return str(d)[:300]
    return str(data)[:300]


# --- a living fleet -------------------------------------------------------------------------
#
# ``N`` engine positions (ids ``{prefix}01`` …) each fly one *unit* (a series from the source) at
# a time. When a unit's data ends — a run-to-failure (train or synthetic) unit at failure, a test
# unit where NASA's file stops — it leaves service and the next unit of the source is installed in
# the same position, its cycles continuing the position's count. So the fleet never stops, there
# are always engines at every stage of life, and RUL alerts open as units wear out and resolve
# when a fresh unit goes in. The positions start at staggered points of their first unit's life
# (the cycles before are sent at once, in batches), so the first minute already shows a mixed fleet.


@dataclass(frozen=True)
class Unit:
    """One engine unit to put into service: ``label`` says where its data comes from."""

    label: str
    series: EngineSeries
    run_to_failure: bool


@dataclass(frozen=True)
class LivingFleet:
    """How to run positions forever. ``speed`` in cycles per second per position."""

    positions: int
    speed: float
    prefix: str = "ENG-"
    stagger: bool = True  # start each position part-way through its first unit's life
    seed: int = 0


def living_units(*, data_dir: Path | None, dataset: str = "FD001", seed: int = 0) -> Iterator[Unit]:
    """Units forever: the C-MAPSS test engines (unseen by a model trained on the train file), then
    the train engines (run to failure), over and over; without data, synthetic run-to-failure units."""
    if data_dir is None:
        from prognos.data.synthetic import synthetic_fleet

        batch = 0
        while True:
            for s in synthetic_fleet(50, seed=seed + 1000 + batch).engines():
                yield Unit(f"synthetic #{batch * 50 + int(s.engine_id)}", s, True)
            batch += 1
    name = subset_name(dataset)
    subset = load_subset(data_dir, name, with_test=True)
    sources = [("test", subset.test, False)] if subset.test is not None else []
    sources.append(("train", subset.train, True))
    while True:
        for split, readings, to_failure in sources:
            assert readings is not None
            for s in readings.engines():
                yield Unit(f"{name} {split} #{s.engine_id}", s, to_failure)


async def simulate_living_async(
    url: str, api_key: str | None, units: Iterator[Unit], fleet: LivingFleet, *, stop: threading.Event,
    concurrency: int = 16, on_event: Callable[[str], None] | None = None, start_cycles: dict[str, int] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SimulationSummary:
    """Run ``fleet.positions`` positions until ``stop`` is set (see above). ``engines_done`` in the
    summary counts units that completed their data and left service. ``start_cycles``: the last
    cycle already stored per position (a second run continues each position's count, as a new unit)."""
    if fleet.positions < 1 or fleet.speed <= 0:
        raise SimulationError("a living fleet needs at least 1 position and a speed above 0 cycles/s")
    summary = SimulationSummary(engines=fleet.positions)
    opts = _Options(fleet.speed, 50, 8, 0.25, stop, asyncio.Event())
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sem = asyncio.Semaphore(concurrency)
    rng = random.Random(fleet.seed)
    started = time.monotonic()
    lock = asyncio.Lock()  # one position takes the next unit at a time

    async def next_unit() -> Unit:
        async with lock:
            return next(units)

    async def position(index: int) -> None:
        engine_id = f"{fleet.prefix}{index + 1:02d}"
        offset = (start_cycles or {}).get(engine_id, 0)
        first = True
        while not stop.is_set():
            unit = await next_unit()
            n = len(unit.series)
            cycles = unit.series.cycles - unit.series.cycles[0] + 1 + offset
            series = EngineSeries(engine_id, cycles, unit.series.values)
            summary.readings_total += n
            await _tag(client, engine_id, unit, offset + 1)
            now = time.monotonic()
            # The first unit of each position starts part-way through its life (stagger); later
            # ones are installed fresh, after a pause of about one cycle.
            into = int(rng.uniform(0.0, 0.85) * n) if first and fleet.stagger else 0
            start = now - into / fleet.speed + (rng.random() / fleet.speed)
            first = False
            if not await _replay_engine(client, sem, series, opts, summary, index, start=start):
                return
            offset = int(cycles[-1])
            if on_event is not None:
                how = "failed" if unit.run_to_failure else "left service (end of its data)"
                on_event(f"{engine_id}: {unit.label} {how} at cycle {offset}; a new unit goes in")

    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=30.0, limits=limits,
                                 transport=transport) as client:
        watcher = asyncio.create_task(_watch_stop(opts))
        try:
            await asyncio.gather(*(position(i) for i in range(fleet.positions)))
        finally:
            watcher.cancel()
    summary.elapsed_s = time.monotonic() - started
    summary.stopped = summary.fatal is None
    return summary


def simulate_living(url: str, api_key: str | None, units: Iterator[Unit], fleet: LivingFleet,
                    **kwargs: Any) -> SimulationSummary:
    """Blocking :func:`simulate_living_async` (on a thread of its own when a loop already runs)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(simulate_living_async(url, api_key, units, fleet, **kwargs))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prognos-living") as pool:
        return pool.submit(lambda: asyncio.run(simulate_living_async(url, api_key, units, fleet, **kwargs))).result()


async def _tag(client: httpx.AsyncClient, engine_id: str, unit: Unit, since_cycle: int) -> None:
    """Say which unit flies in the position now (best effort: the readings matter, not the tag)."""
    with contextlib.suppress(httpx.HTTPError):
        await client.put(f"/api/v1/engines/{quote(engine_id, safe='')}",
                         json={"tags": {"unit": unit.label, "installed_at_cycle": since_cycle}})
