"""The hostile-input table of issue 9, as parametrized cases against a real ``prognos serve``
(SQLite and PostgreSQL): every probe gets its 4xx with the one error body, never a 5xx."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import Served, serve
from tests.unit.serving.factory import readings

BIG = str(2**64)  # beyond any 64-bit column
HUGE = "1" + "0" * 40


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           tiny_bundle: Path) -> Iterator[Served]:
    settings: dict[str, str] = {"rate_limit_per_s": "0", "anonymous_rate_limit_per_s": "0"}
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")
        settings["database_url"] = postgres.server.create_database()
    with serve(tmp_path_factory.mktemp(f"hostile-{request.param}"), tiny_bundle, **settings) as s:
        with s.client() as c:  # an engine, so the id routes have something to find
            assert c.put("/api/v1/engines/e1", json={"tags": {"site": "a"}}).status_code == 200
        yield s


def _predict_body(bundle: Path, engine_id: str = "e1") -> dict[str, object]:
    return {"engine_id": engine_id, "sensor_data": readings(bundle, 25)}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (method, path, kwargs for httpx, expected status)
INTEGER_CASES = [
    ("GET", f"/api/v1/alerts/{BIG}", 422),
    ("GET", f"/api/v1/alerts/{HUGE}", 422),
    ("POST", f"/api/v1/alerts/{BIG}/acknowledge", 422),
    ("POST", f"/api/v1/alerts/{BIG}/resolve", 422),
    ("DELETE", f"/api/v1/keys/{BIG}", 422),
    ("GET", f"/api/v1/alerts?offset={BIG}", 422),
    ("GET", f"/api/v1/engines?offset={HUGE}", 422),
    ("GET", f"/api/v1/engines?limit={BIG}", 422),
    ("GET", f"/api/v1/engines/e1/readings?offset={BIG}", 422),
    ("GET", f"/api/v1/engines/e1/predictions?offset={BIG}", 422),
    ("GET", "/api/v1/alerts/0", 422),
    ("GET", "/api/v1/alerts/-1", 422),
]


@pytest.mark.parametrize(("method", "path", "status"), INTEGER_CASES,
                         ids=[f"{m} {p[:60]}" for m, p, _ in INTEGER_CASES])
def test_integers_beyond_64_bits_are_a_422(server: Served, method: str, path: str, status: int) -> None:
    with server.client() as c:
        r = c.request(method, path)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error", "detail"}


BODY_CASES = [
    # (name, path, body bytes, content type, expected status, detail fragment)
    ("deep JSON to /readings", "/api/v1/engines/e1/readings", _nested(1000), "application/json", 422, "nested"),
    ("deep JSON to /predict", "/api/v1/predict", _nested(5000), "application/json", 422, "nested"),
    ("deep JSON to /predict/batch", "/api/v1/predict/batch", b'{"requests":' + _nested(5000) + b"}",
     "application/json", 422, "nested"),
    ("deep JSON to PUT /engines", "/api/v1/engines/e1", b'{"tags":' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
     "application/json", 422, "nested"),
    ("duplicate key to /predict", "/api/v1/predict", b'{"engine_id":"e1","engine_id":"e2","sensor_data":[]}',
     "application/json", 422, "duplicate"),
    ("duplicate key to /readings", "/api/v1/engines/e1/readings", b'[{"cycle":1,"cycle":2}]', "application/json",
     422, "duplicate"),
    ("duplicate key to /keys", "/api/v1/keys", b'{"role":"admin","role":"viewer"}', "application/json", 422,
     "duplicate"),
    ("text/plain to /predict", "/api/v1/predict", b'{"engine_id":"e1","sensor_data":[]}', "text/plain", 415,
     "application/json"),
    ("XML to /readings", "/api/v1/engines/e1/readings", b"<readings><r cycle='1'/></readings>", "application/xml",
     415, "application/json"),
    ("form to /predict", "/api/v1/predict", b"engine_id=e1&sensor_data=1", "application/x-www-form-urlencoded", 415,
     "application/json"),
    ("form to /predict/batch", "/api/v1/predict/batch", b"requests=1", "application/x-www-form-urlencoded", 415,
     "application/json"),
    ("no content type to /readings", "/api/v1/engines/e1/readings", b'[{"cycle":1}]', "", 415, "application/json"),
    ("JSON to an upload route", "/api/v1/readings/upload", b'{"file":"x"}', "application/json", 415, "multipart"),
    ("newline engine id to /predict", "/api/v1/predict", b'{"engine_id":"e1\\n","sensor_data":[{"cycle":1}]}',
     "application/json", 422, "engine id"),
    ("control char engine id to /predict", "/api/v1/predict",
     b'{"engine_id":"e\\u00001","sensor_data":[{"cycle":1}]}', "application/json", 422, "engine id"),
    ("newline engine id in a path", "/api/v1/engines/e1%0A/readings", b'[{"cycle":1}]', "application/json", 422,
     "engine_id"),
]


@pytest.mark.parametrize(("name", "path", "body", "ctype", "status", "fragment"), BODY_CASES,
                         ids=[c[0] for c in BODY_CASES])
def test_hostile_bodies_get_one_clear_4xx(server: Served, name: str, path: str, body: bytes, ctype: str,
                                          status: int, fragment: str) -> None:
    method = "PUT" if path == "/api/v1/engines/e1" else "POST"
    headers = {"Content-Type": ctype} if ctype else {}
    with server.client() as c:
        r = c.request(method, path, content=body, headers=headers)
    assert r.status_code == status, f"{name}: {r.status_code} {r.text[:300]}"
    body_json = r.json()
    assert set(body_json) == {"error", "detail"}
    assert fragment in body_json["detail"], body_json


def test_the_newline_engine_id_is_not_a_second_engine(server: Served, tiny_bundle: Path) -> None:
    with server.client() as c:
        for eid in ("e1\n", "e1\r", "e1 ", "\te1"):
            r = c.post("/api/v1/predict", json=_predict_body(tiny_bundle, eid))
            assert r.status_code == 422, (eid, r.text)
        assert c.post("/api/v1/predict", json=_predict_body(tiny_bundle, "e1")).status_code == 200


def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(server: Served) -> None:
    """Content-Length 60 MB, and then not a byte: the 413 must come from the headers alone."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 62914560\r\n\r\n")
        answer = b""
        while b"PayloadTooLargeError" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode("latin-1")
    assert text.startswith("HTTP/1.1 413"), text[:200]
    assert "PayloadTooLargeError" in text, text


def test_options_and_wrong_methods_answer_405_with_the_real_allow(server: Served) -> None:
    with server.client() as c:
        for path, methods in (("/api/v1/engines/e1", {"GET", "PUT"}), ("/api/v1/keys", {"GET", "POST"}),
                              ("/api/v1/predict", {"POST"})):
            for method in ("OPTIONS", "PATCH"):
                r = c.request(method, path)
                assert r.status_code == 405, (method, path, r.status_code)
                allow = {m.strip() for m in r.headers["allow"].split(",")}
                assert methods <= allow, (path, allow)
                assert allow <= methods | {"HEAD"}, (path, allow)


def test_unauthenticated_reads_reveal_no_filesystem_path(server: Served, tiny_bundle: Path) -> None:
    for path in ("/api/v1/models", "/health/detailed"):
        text = httpx.get(f"{server.url}{path}", timeout=10).text
        assert str(tiny_bundle) not in text and str(tiny_bundle.parent) not in text, path
        assert "/tmp/" not in text and "/home/" not in text and "/root/" not in text, path


def test_the_429_body_and_retry_after_agree(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0.2", rate_limit_burst="1",
               anonymous_rate_limit_per_s="0.2", anonymous_rate_limit_burst="1") as s:
        for key in (s.key("viewer"), None):
            with s.client(key) as c:
                path = "/api/v1/engines" if key else "/api/v1/predict"
                for _ in range(3):
                    r = (c.get("/api/v1/engines") if key else
                         c.post("/api/v1/predict", json=_predict_body(tiny_bundle)))
                    if r.status_code == 429:
                        break
                assert r.status_code == 429, (path, r.status_code, r.text)
                seconds = int(r.headers["retry-after"])
                assert f"retry after {seconds} s" in r.json()["detail"], (r.headers, r.json())
                assert seconds == math.ceil(seconds) >= 1
