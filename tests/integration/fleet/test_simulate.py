"""``prognos simulate``'s client logic against a small stand-in server on a real socket (uvicorn on
127.0.0.1, a free port): pacing, retries with back-off, fatal answers, per-engine failures, stop.
The replay into the real fleet server is in ``test_simulate_server.py``."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from prognos.data.synthetic import synthetic_fleet
from prognos.fleet.simulate import SimulationError, load_replay_fleet, reading_payload, simulate
from tests.helpers import write_cmapss_dir


@dataclass
class Stub:
    """What the stand-in server received, and how it should misbehave."""

    url: str = ""
    received: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: list[tuple[str, int]] = field(default_factory=list)  # (engine, readings in the request)
    auth: list[str | None] = field(default_factory=list)
    busy_first: int = 0  # answer the first N requests of each engine with 503
    reject_engine: str | None = None  # answer 422 for this engine
    status_all: int | None = None  # answer every request with this status
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def stub() -> Iterator[Stub]:
    state = Stub()
    app = FastAPI()

    @app.post("/api/v1/engines/{engine_id}/readings")
    async def ingest(engine_id: str, request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.auth.append(request.headers.get("authorization"))
            state.attempts[engine_id] += 1
            if state.status_all is not None:
                return JSONResponse({"detail": "no entry"}, status_code=state.status_all)
            if state.attempts[engine_id] <= state.busy_first:
                return JSONResponse({"detail": "busy"}, status_code=503, headers={"Retry-After": "0"})
            if engine_id == state.reject_engine:
                return JSONResponse({"detail": "body[0].s3: out of range"}, status_code=422)
            state.requests.append((engine_id, len(body)))
            dup = 0
            for r in body:
                if r["cycle"] in state.received[engine_id]:
                    dup += 1
                    continue
                state.received[engine_id].append(r["cycle"])
                state.times[engine_id].append(time.monotonic())
        return JSONResponse({"accepted": len(body) - dup, "duplicates": dup}, status_code=201)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "stub server did not start"
        time.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    thread.join(5)


def test_replays_every_cycle_of_every_engine_in_order(stub: Stub) -> None:
    fleet = synthetic_fleet(4, seed=3, id_prefix="E", min_life=30, max_life=40)
    summary = simulate(stub.url, "k-123", fleet, speed=0, batch_max=7, concurrency=3)
    assert summary.ok, summary.describe()
    assert summary.engines_done == 4 and summary.readings_sent == len(fleet) == summary.accepted
    for e in fleet.engines():
        assert stub.received[e.engine_id] == [int(c) for c in e.cycles]
    assert max(n for _, n in stub.requests) == 7  # batches are capped at batch_max
    assert set(stub.auth) == {"Bearer k-123"}


def test_payload_carries_every_channel_by_name_and_drops_missing_ones() -> None:
    fleet = synthetic_fleet(1, seed=0)
    e = next(fleet.engines())
    p = reading_payload(int(e.cycles[0]), e.values[0])
    assert p["cycle"] == 1 and len(p) == 25 and p["s21"] == pytest.approx(e.values[0][-1])
    v = e.values[0].copy()
    v[3] = float("nan")  # s1 missing (a CSV without that column)
    assert "s1" not in reading_payload(1, v)


def test_paces_each_engine_at_the_requested_speed(stub: Stub) -> None:
    fleet = synthetic_fleet(3, seed=1, id_prefix="P")
    summary = simulate(stub.url, None, fleet, speed=10.0, max_cycles=6)
    assert summary.ok and summary.readings_sent == 18
    for eid, times in stub.times.items():
        assert stub.received[eid] == list(range(1, 7))
        # 6 cycles at 10 cycles/s: the last one is due 5/10 s after the first.
        assert times[-1] - times[0] >= 0.4, f"{eid} replayed too fast: {times[-1] - times[0]:.3f} s"
    # Keeping up with the schedule means about one reading per request, not one catch-up batch
    # (a loaded machine may make an engine late once or twice: then it sends two).
    assert len(stub.requests) >= 0.75 * 18
    assert summary.elapsed_s < 10.0


def test_retries_busy_answers_and_sends_each_reading_once(stub: Stub) -> None:
    stub.busy_first = 2
    fleet = synthetic_fleet(2, seed=2, id_prefix="R", min_life=20, max_life=25)
    summary = simulate(stub.url, "k", fleet, speed=0, batch_max=10, backoff_s=0.01)
    assert summary.ok, summary.describe()
    assert summary.retries == 4  # two 503s per engine
    for e in fleet.engines():
        assert stub.received[e.engine_id] == [int(c) for c in e.cycles]


def test_gives_up_after_max_retries_and_reports_the_engine(stub: Stub) -> None:
    stub.status_all = 503
    fleet = synthetic_fleet(1, seed=2, id_prefix="G", min_life=20, max_life=25)
    summary = simulate(stub.url, "k", fleet, speed=0, max_retries=2, backoff_s=0.01)
    assert summary.engines_failed == 1 and summary.retries == 2 and summary.readings_sent == 0
    assert any("HTTP 503" in e for e in summary.errors)


def test_rejected_key_ends_the_whole_replay(stub: Stub) -> None:
    stub.status_all = 401
    fleet = synthetic_fleet(5, seed=2, id_prefix="K")
    summary = simulate(stub.url, "wrong", fleet, speed=0, concurrency=1)
    assert summary.fatal is not None and "401" in summary.fatal
    assert not summary.ok and summary.readings_sent == 0
    assert sum(stub.attempts.values()) <= 2  # stopped at once, not once per engine and retry


def test_one_rejected_engine_does_not_stop_the_others(stub: Stub) -> None:
    stub.reject_engine = "X2"
    fleet = synthetic_fleet(3, seed=4, id_prefix="X", min_life=20, max_life=25)
    summary = simulate(stub.url, "k", fleet, speed=0)
    assert summary.engines_failed == 1 and summary.engines_done == 2 and summary.rejected > 0
    assert any(e.startswith("X2 cycles 1-") and "out of range" in e for e in summary.errors)
    assert "X2" not in stub.received and {"X1", "X3"} <= set(stub.received)


def test_stop_event_ends_the_replay_early(stub: Stub) -> None:
    fleet = synthetic_fleet(3, seed=5, id_prefix="S")
    stop = threading.Event()
    timer = threading.Timer(0.4, stop.set)
    timer.start()
    summary = simulate(stub.url, "k", fleet, speed=10.0, stop=stop)
    timer.join()
    assert summary.stopped and not summary.fatal and summary.engines_failed == 0
    assert 0 < summary.readings_sent < summary.readings_total
    assert summary.elapsed_s < 5.0  # stopped after 0.4 s of a replay that would take ~20 s
    assert "stopped early" in summary.describe()


def test_unreachable_server_is_reported_not_raised() -> None:
    fleet = synthetic_fleet(1, seed=0, id_prefix="U", min_life=20, max_life=20)
    summary = simulate(f"http://127.0.0.1:{_free_port()}", "k", fleet, speed=0, max_retries=1, backoff_s=0.01)
    assert summary.engines_failed == 1 and any("ConnectError" in e for e in summary.errors)


def test_cmapss_fleet_gets_unique_ids_and_engine_limit(tmp_path: Path) -> None:
    root = write_cmapss_dir(tmp_path / "cm", n_train=6, n_test=4)
    test = load_replay_fleet(dataset="fd001", split="test", data_dir=root, engines=3)
    assert [e.engine_id for e in test.engines()] == ["FD001-test-1", "FD001-test-2", "FD001-test-3"]
    train = load_replay_fleet(dataset="FD001", split="train", data_dir=root)
    assert train.n_engines == 6 and next(train.engines()).engine_id == "FD001-train-1"
    synth = load_replay_fleet(synthetic=5, engines=2)
    assert [e.engine_id for e in synth.engines()] == ["SYN-1", "SYN-2"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"split": "validation", "data_dir": Path(".")}, "--split must be train or test"),
    ({"synthetic": 0}, "--synthetic must be at least 1"),
    ({"synthetic": 2, "engines": 0}, "--engines must be at least 1"),
    ({"data_dir": None}, "no C-MAPSS data"),
])
def test_bad_options_raise_one_clear_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SimulationError, match=message):
        load_replay_fleet(**kwargs)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prognos.cli", "simulate", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_replays_and_prints_a_summary(stub: Stub) -> None:
    r = _cli("--url", stub.url, "--api-key", "k", "--synthetic", "3", "--max-cycles", "4", "--speed", "0")
    assert r.returncode == 0, r.stderr
    assert "3/3 engines complete" in r.stdout and "12/12 sent, 12 accepted" in r.stdout
    assert sorted(stub.received) == ["SYN-1", "SYN-2", "SYN-3"]


def test_cli_bad_key_exits_non_zero_with_one_line(stub: Stub) -> None:
    stub.status_all = 403
    r = _cli("--url", stub.url, "--api-key", "viewer-key", "--synthetic", "2", "--speed", "0")
    assert r.returncode == SimulationError.exit_code
    assert r.stderr.strip().splitlines()[-1].startswith("error: HTTP 403")
    assert "Traceback" not in r.stderr


def test_cli_rejects_bad_option_without_traceback() -> None:
    r = _cli("--url", "http://127.0.0.1:9", "--synthetic", "0")
    assert r.returncode == 2 and "--synthetic" in r.stderr and len(r.stderr.strip().splitlines()) == 1  # usage
    assert "Traceback" not in r.stderr


def test_blocking_call_works_inside_a_running_event_loop(stub: Stub) -> None:
    import asyncio

    fleet = synthetic_fleet(2, seed=6, id_prefix="L", min_life=20, max_life=20)

    async def caller() -> int:
        return simulate(stub.url, "k", fleet, speed=0).readings_sent

    assert asyncio.run(caller()) == 40
