"""Past the queue limit the server answers a fast 503 with Retry-After, and stays ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.serving.conftest import ServeProcess
from tests.integration.serving.test_rest_contract import metric
from tests.unit.serving.factory import readings


def test_overload_is_a_fast_503_and_the_server_recovers(serve_process: Callable[..., ServeProcess],
                                                        tiny_bundle: Path) -> None:
    # A one-window queue, no cache (every request needs the model) and a long linger, so
    # concurrent requests pile up in the batcher instead of finishing one by one.
    server = serve_process(tiny_bundle, env={"PROGNOS_MAX_QUEUE": "1", "PROGNOS_CACHE_SIZE": "0",
                                             "PROGNOS_BATCH_MAX_WAIT_MS": "20",
                                             # the queue limit is under test, not the per-address rate limit
                                             "PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S": "100000",
                                             "PROGNOS_ANONYMOUS_RATE_LIMIT_BURST": "100000"})
    bodies = [{"engine_id": f"e{i}", "sensor_data": readings(tiny_bundle, 5 + i % 30, engine=i % 6)}
              for i in range(240)]

    async def fire() -> list[tuple[int, float, httpx.Response]]:
        limits = httpx.Limits(max_connections=48)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            async def one(b: dict[str, object]) -> tuple[int, float, httpx.Response]:
                t = time.perf_counter()
                r = await client.post("/api/v1/predict", json=b)
                return r.status_code, time.perf_counter() - t, r

            return await asyncio.gather(*(one(b) for b in bodies))

    results = asyncio.run(fire())
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    refused = [(t, r) for s, t, r in results if s == 503]
    assert refused, "no request was refused: the queue limit is not enforced"
    assert statuses.count(200) > 0
    for _, r in refused:
        assert r.json()["error"] == "OverloadedError" and int(r.headers["retry-after"]) >= 1
    # Refusals never wait for the queue to drain (unit-tested: the batcher refuses synchronously);
    # here, on a shared CPU with the load generator beside it, only an upper bound far below any
    # client timeout is stable.
    refused_times = sorted(t for t, _ in refused)
    assert refused_times[len(refused_times) // 2] <= sorted(t for s, t, _ in results if s == 200)[-1]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert metric(metrics, "prognos_http_request_duration_seconds_count", route="/api/v1/predict",
                  status="503") == len(refused)
    assert f"prognos_overloaded_total {float(len(refused))}" in metrics

    assert httpx.get(f"{server.url}/ready").status_code == 200
    assert httpx.post(f"{server.url}/api/v1/predict", json=bodies[0]).status_code == 200
    assert server.proc.poll() is None
