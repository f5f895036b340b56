"""``prognos serve --sagemaker``: GET /ping and POST /invocations (JSON and CSV) over a real socket."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.serving.conftest import ServeProcess, free_port
from tests.unit.serving.factory import body, readings


def test_sagemaker_container_contract(serve_process: Callable[..., ServeProcess], tiny_bundle: Path) -> None:
    port = free_port()
    server = serve_process(tiny_bundle, env={"PROGNOS_SAGEMAKER_PORT": str(port)}, args=("--sagemaker",),
                           path="/ping", port=port)
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{url}/ping").status_code == 200
    one = httpx.post(f"{url}/invocations", json=body(tiny_bundle, "sm-1", n=30))
    assert one.status_code == 200 and one.json()["engine_id"] == "sm-1"

    rows = readings(tiny_bundle, 30)
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    r = httpx.post(f"{url}/invocations", content=out.getvalue(), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["responses"][0]["predicted_rul"] == one.json()["predicted_rul"]
    bad = httpx.post(f"{url}/invocations", json={"engine_id": "x", "sensor_data": []})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("sensor_data: is empty")
    # The REST API is not what this container serves.
    assert httpx.post(f"{url}/api/v1/predict", json=body(tiny_bundle)).status_code == 404
    assert server.proc.poll() is None
