"""Hot swaps under load on the real ``prognos serve``: clients predicting back to back while the
model is reloaded again and again get no failed request, and the server's memory does not grow
with the number of reloads (an old model that stayed referenced would add its size every time)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from tests.reliability.conftest import heavy, serve
from tests.unit.serving.factory import readings

RELOADS = 30


@heavy
def test_reloads_under_load_fail_no_request_and_leak_no_memory(tmp_path: Path, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 40)
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0", anonymous_rate_limit_per_s="0") as server:
        seen: list[int] = []
        stop = threading.Event()

        def load(k: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    body = {"engine_id": f"r{k}", "sensor_data": rows[: 20 + (i * 7 + k) % 20]}
                    try:
                        seen.append(c.post("/api/v1/predict", json=body).status_code)
                    except httpx.HTTPError:
                        seen.append(0)
                    i += 1

        threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        rss: list[int] = []
        try:
            with server.client(timeout=60) as admin:
                for n in range(RELOADS):
                    r = admin.post("/api/v1/models/reload")
                    assert r.status_code == 200, r.text
                    if n in (4, RELOADS - 1):
                        rss.append(server.rss_kb())
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    failed = [s for s in seen if s != 200]
    grown_mb = (rss[1] - rss[0]) / 1024
    print(f"\n{RELOADS} reloads under load: {len(seen)} requests, {len(failed)} failed; RSS after reload 5: "
          f"{rss[0] / 1024:.0f} MB, after {RELOADS}: {rss[1] / 1024:.0f} MB ({grown_mb:+.1f} MB)")
    assert len(seen) > 3 * RELOADS
    assert not failed, sorted(set(failed))
    # 25 more reloads of a model whose session is a few MB: more than ~1 MB per reload means
    # swapped-out models are kept alive.
    assert grown_mb < 25, f"RSS grew {grown_mb:.1f} MB over {RELOADS - 5} reloads"
