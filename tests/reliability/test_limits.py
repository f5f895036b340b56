"""Resource limits from outside: oversized bodies refused before they are read (server memory
checked), uploads parsed off the event loop (``/health`` latency measured during a 40 MB upload of
real C-MAPSS readings), and connections that never finish their headers closed.

Timing here is relative and generous on purpose (this is a shared 2-core machine): the numbers are
printed, and the bounds say what would be an outage, not what a quiet machine achieves."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.reliability.conftest import Served, heavy, serve

MB = 2**20


def _chunks(total: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """A JSON-looking body of ``total`` bytes, produced as it is sent (the client holds one chunk)."""
    yield b'{"engine_id":"e1","sensor_data":['
    sent = 33
    piece = b'{"cycle":1,"s2":642.1},' * (chunk // 23)
    while sent + len(piece) < total:
        yield piece
        sent += len(piece)
    yield b"{}]}"


def test_a_60_mb_body_is_refused_with_413_and_costs_the_server_no_60_mb(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0", anonymous_rate_limit_per_s="0") as server:
        with server.client() as c:  # warm the routes, so the peak below is the body's and not start-up's
            c.get("/api/v1/engines")
            c.post("/api/v1/engines/e1/readings", json=[{"cycle": 1}])
        before = server.rss_peak_kb()
        results = []
        for path in ("/api/v1/predict", "/api/v1/engines/e1/readings"):
            for _ in range(3):
                with server.client() as c:
                    try:  # chunked: no Content-Length, so the server must count as it reads
                        r = c.post(path, content=_chunks(60 * MB), headers={"Content-Type": "application/json"})
                        results.append(r.status_code)
                        assert r.json()["error"] == "PayloadTooLargeError", r.text
                    except httpx.WriteError:  # the server answered 413 and closed while we were still sending
                        results.append(413)
        grown_mb = (server.rss_peak_kb() - before) / 1024
        print(f"\n60 MB bodies x6: statuses {results}, server peak RSS grew {grown_mb:.1f} MB")
        assert set(results) == {413}
        assert grown_mb < 20, f"peak RSS grew {grown_mb:.1f} MB for bodies refused at 8 MB"
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def _real_readings_file(cmapss: Path, target_bytes: int) -> bytes:
    """The C-MAPSS FD001 training file, its units renumbered and repeated to ``target_bytes``
    (FD001: the sea-level regime the test model's plausible ranges were drawn from)."""
    lines: list[bytes] = []
    size, offset = 0, 0
    sources = [cmapss / "train_FD001.txt"]
    while size < target_bytes:
        for source in sources:
            units = 0
            for line in source.read_bytes().splitlines():
                parts = line.split()
                if not parts:
                    continue
                unit = int(parts[0])
                units = max(units, unit)
                row = b" ".join([str(unit + offset).encode(), *parts[1:]]) + b"\n"
                lines.append(row)
                size += len(row)
            offset += units
            if size >= target_bytes:
                break
    return b"".join(lines)


def _probe_health(server: Served, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        while not stop.is_set():
            started = time.perf_counter()
            c.get("/health")
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)


@heavy
def test_health_stays_fast_during_a_40_mb_upload_of_real_readings(tmp_path: Path, tiny_bundle: Path,
                                                                  cmapss: Path) -> None:
    data = _real_readings_file(cmapss, 40 * MB)
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0") as server:
        quiet: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_probe_health, args=(server, stop, quiet))
        probe.start()
        time.sleep(2)
        stop.set()
        probe.join()
        during: list[float] = []
        stop = threading.Event()
        probe = threading.Thread(target=_probe_health, args=(server, stop, during))
        probe.start()
        started = time.perf_counter()
        try:
            with server.client(timeout=600) as c:
                r = c.post("/api/v1/readings/upload", files={"file": ("big.txt", data, "text/plain")},
                           params={"engine_prefix": "u"})
        finally:
            upload_s = time.perf_counter() - started
            stop.set()
            probe.join()
    assert r.status_code == 201, r.text[:500]

    def p99(xs: list[float]) -> float:
        return statistics.quantiles(xs, n=100)[98] if len(xs) >= 2 else xs[0]

    print(f"\n40 MB upload ({len(data) / MB:.1f} MB, {r.json()['accepted']} readings) in {upload_s:.1f} s; "
          f"/health p50/p99/max ms: quiet {statistics.median(quiet):.1f}/{p99(quiet):.1f}/{max(quiet):.1f}, "
          f"during {statistics.median(during):.1f}/{p99(during):.1f}/{max(during):.1f} ({len(during)} probes)")
    assert len(during) >= 20
    # The target is p99 < 100 ms; the bound allows for this shared 2-core machine, where the
    # server's worker threads compete with the test's own client. Before uploads were moved off
    # the event loop, /health took seconds (issue 9: up to 18.7 s).
    assert p99(during) < 250, f"/health p99 {p99(during):.0f} ms during the upload"


def test_connections_that_never_finish_their_headers_are_closed(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, http_header_timeout_s="1", http_keepalive_s="1") as server:
        host, port = server.url.removeprefix("http://").split(":")
        socks = []
        for i in range(200):
            s = socket.create_connection((host, int(port)), timeout=10)
            if i % 2:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            socks.append(s)
        r = httpx.get(f"{server.url}/health", timeout=10)  # still serving meanwhile
        assert r.status_code == 200
        deadline = time.monotonic() + 15
        closed = 0
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                closed += 0
            s.close()
        print(f"\nslow clients: {closed}/200 connections closed by the server within 15 s")
        assert closed == 200
        # A client that sent its headers in time still gets its answer.
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 200")
