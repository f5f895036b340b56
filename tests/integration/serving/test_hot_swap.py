"""Hot swap over a real socket: under concurrent load no request fails; a tampered bundle is
refused and the old model keeps serving; SIGHUP reloads the bundle path in place."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.serving.conftest import ADMIN_TOKEN, ServeProcess
from tests.unit.serving.factory import readings, rebundle, tamper

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_reload_under_concurrent_load_fails_no_request(serve_process: Callable[..., ServeProcess],
                                                       tiny_bundle: Path, tmp_path: Path) -> None:
    server = serve_process(tiny_bundle)
    v2 = rebundle(tiny_bundle, tmp_path / "v2", "swap-v2")
    old = httpx.get(f"{server.url}/ready").json()["model_version"]
    seen: list[tuple[int, str]] = []

    async def scenario() -> httpx.Response:
        stop = asyncio.Event()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            async def load(k: int) -> None:
                i = 0
                while not stop.is_set():
                    b = {"engine_id": f"e{k}", "sensor_data": readings(tiny_bundle, 5 + (i * 7 + k) % 40, engine=k % 6)}
                    r = await client.post("/api/v1/predict", json=b)
                    seen.append((r.status_code, r.json().get("model_version", r.text)))
                    i += 1

            clients = [asyncio.create_task(load(k)) for k in range(6)]
            while len(seen) < 40:
                await asyncio.sleep(0.01)
            reload = await client.post("/api/v1/models/reload", json={"bundle": str(v2)}, headers=ADMIN)
            at_swap = len(seen)
            deadline = time.monotonic() + 30
            while len(seen) < at_swap + 40 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*clients)
            return reload

    reload = asyncio.run(scenario())
    assert reload.status_code == 200, reload.text
    assert reload.json() == {"model_version": "swap-v2", "previous_version": old, "bundle": str(v2)}
    failed = [s for s in seen if s[0] != 200]
    assert not failed, failed[:5]
    versions = [v for _, v in seen]
    assert versions[0] == old and versions[-1] == "swap-v2" and set(versions) == {old, "swap-v2"}


def test_tampered_bundle_is_refused_and_the_old_model_serves(serve_process: Callable[..., ServeProcess],
                                                              tiny_bundle: Path, tiny_bundle_copy_factory) -> None:  # type: ignore[no-untyped-def]
    server = serve_process(tiny_bundle)
    version = httpx.get(f"{server.url}/ready").json()["model_version"]
    bad = tamper(tiny_bundle_copy_factory("tampered"))
    r = httpx.post(f"{server.url}/api/v1/models/reload", json={"bundle": str(bad)}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "BundleError"
    assert "model.onnx does not match its SHA-256" in r.json()["detail"]
    assert httpx.get(f"{server.url}/ready").status_code == 200
    p = httpx.post(f"{server.url}/api/v1/predict", json={"engine_id": "e", "sensor_data": readings(tiny_bundle, 9)})
    assert p.status_code == 200 and p.json()["model_version"] == version
    assert httpx.get(f"{server.url}/api/v1/models").json()["bundle"] == tiny_bundle.name
    no_token = httpx.post(f"{server.url}/api/v1/models/reload", json={"bundle": str(tiny_bundle)})
    assert no_token.status_code == 401


def test_sighup_reloads_the_bundle_path(serve_process: Callable[..., ServeProcess], tiny_bundle: Path,
                                        tmp_path: Path) -> None:
    served = rebundle(tiny_bundle, tmp_path / "served", "hup-v1")
    server = serve_process(served)
    assert httpx.get(f"{server.url}/ready").json()["model_version"] == "hup-v1"
    rebundle(tiny_bundle, served, "hup-v2")  # a new bundle written over the served path (atomic rename)
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    version = None
    while time.monotonic() < deadline:
        version = httpx.get(f"{server.url}/ready").json()["model_version"]
        if version == "hup-v2":
            break
        time.sleep(0.05)
    assert version == "hup-v2", server.log()
    # A corrupted bundle at the path: SIGHUP is refused, the loaded model keeps serving.
    tamper(served)
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while "reload refused" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "reload refused" in server.log()
    assert httpx.get(f"{server.url}/ready").json()["model_version"] == "hup-v2"
    p = httpx.post(f"{server.url}/api/v1/predict", json={"engine_id": "e", "sensor_data": readings(tiny_bundle, 9)})
    assert p.status_code == 200 and p.json()["model_version"] == "hup-v2"
