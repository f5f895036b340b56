"""SIGTERM: stop accepting, let the in-flight request finish, exit 0 within the grace period."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.serving.conftest import ServeProcess
from tests.unit.serving.factory import body


def _read_until(sock: socket.socket, marker: bytes, timeout_s: float = 10.0) -> bytes:
    sock.settimeout(timeout_s)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_finishes_the_in_flight_request_and_exits_0(serve_process: Callable[..., ServeProcess],
                                                            tiny_bundle: Path) -> None:
    server = serve_process(tiny_bundle, env={"PROGNOS_SHUTDOWN_GRACE_S": "5"})
    payload = json.dumps(body(tiny_bundle, "in-flight", n=20)).encode()
    sock = socket.create_connection(("127.0.0.1", server.http_port))
    # "Expect: 100-continue" makes the server say when the handler is waiting for the body: from
    # then on the request is provably in flight.
    sock.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Expect: 100-continue\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n")
    assert b"100 Continue" in _read_until(sock, b"\r\n\r\n")

    server.signal(signal.SIGTERM)
    sent_at = time.monotonic()
    # The listener closes: new connections are refused while the in-flight request is still open.
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection(("127.0.0.1", server.http_port), timeout=0.5).close()
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused, "the server still accepts connections after SIGTERM"

    sock.sendall(payload)
    response = _read_until(sock, b"}")
    sock.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert b'"engine_id":"in-flight"' in response
    assert server.proc.wait(10) == 0, server.log()
    assert time.monotonic() - sent_at < 5 + 1, "did not exit within the grace period"
    assert '"event": "stopped"' in server.log()


def test_a_tampered_bundle_at_start_ends_the_process_with_exit_4(serve_process: Callable[..., ServeProcess],
                                                                  tiny_bundle_copy_factory) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.serving.factory import tamper

    server = serve_process(tamper(tiny_bundle_copy_factory("bad-at-start")), wait=False)
    assert server.proc.wait(30) == 4, server.log()
    log = server.log()
    assert "model.onnx does not match its SHA-256" in log and "Traceback" not in log


def test_serve_without_a_bundle_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    env["PROGNOS_DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-m", "prognos.cli", "serve", "--http-port", "0"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "no bundle: pass --bundle DIR or set PROGNOS_BUNDLE" in out.stderr and "Traceback" not in out.stderr
