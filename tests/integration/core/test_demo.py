"""`prognos demo`, the README's main command, end to end (reusing a trained model to stay quick)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import httpx


def test_demo_serves_replays_and_prints_url_and_key(tmp_path, tiny_bundle):
    state = tmp_path / "state"
    (state / "demo").mkdir(parents=True)
    shutil.copytree(tiny_bundle, state / "demo" / "bundle")
    env = {**os.environ, "PROGNOS_DATA_DIR": str(state), "PROGNOS_HTTP_PORT": "0", "PROGNOS_GRPC_PORT": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "demo", "--duration", "40", "--engines", "4",
                             "--speed", "100"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # until the replay is over; the server keeps running until --duration
        lines.append(line)
        if "replay finished" in line or "demo stopped" in line:
            break
    out = "".join(lines)
    url = re.search(r"dashboard\s+(http://\S+)/", out)
    key = re.search(r"API key\s+(pk_\S+)", out)
    assert url and key, out
    assert "SYNTHETIC" in out  # the reused model is synthetic, and the demo says so
    assert "replay finished" in out, out
    base, headers = url.group(1), {"Authorization": f"Bearer {key.group(1)}"}
    page = httpx.get(f"{base}/", timeout=5, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()  # the dashboard (sign-in first)
    engines = httpx.get(f"{base}/api/v1/engines", headers=headers, timeout=5).json()
    items = engines["items"] if isinstance(engines, dict) else engines
    assert len(items) == 4 and all(e.get("rul") is not None or e.get("predicted_rul") is not None for e in items)
    proc.send_signal(2)  # Ctrl-C
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out + rest
    assert "demo stopped" in rest and "Traceback" not in out + rest
