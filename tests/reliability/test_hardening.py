"""Issue 19, probed from outside against a real ``prognos serve`` (SQLite and PostgreSQL): no request —
anonymous, viewer or operator — may stall the event loop (every test here also runs under the
loop-stall check of ``conftest.py``), grow memory or label sets without bound, break a page for
everyone, or become a 5xx. Each test failed before the fix (see docs/benchmarks.md, "Hardening,
round 2"); timings live in ``benchmarks/hardening.py``, not here."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import stat
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import ADMIN, Served, serve
from tests.unit.serving.factory import readings

ESCAPED_63K = b"[" * 40 + b'"' + b'\\"' * 32_000  # the 63 KiB body that froze the server for 24 s
ESCAPED_8M = b"[" * 40 + b'"' + b'\\"' * (4 * 2**20 - 64)  # just under the 8 MiB body limit
LONG_INT = b"1" * 5000  # past Python's 4,300-digit int-string limit


def hostile_values() -> list[tuple[str, dict[str, Any]]]:
    """Every edge value the fleet must store and serve back intact (PUT /api/v1/engines/{id} bodies):
    the longest names and values the rules allow, every tag type, markup, CSV formulas, RTL and
    astral characters. Schemathesis also runs against a database holding these."""
    long_value = "v" * 256
    return [
        ("hx-max", {"tags": {f"{i:02d}" + "n" * 62: long_value for i in range(32)}, "model_family": "f" * 64}),
        ("hx-types", {"tags": {"int": 2**63 - 1, "neg": -(2**63 - 1), "float": 1.7976931348623157e308,
                               "tiny": 5e-324, "zero": -0.0, "yes": True, "no": False, "none": None, "empty": ""}}),
        ("hx-markup", {"tags": {"html": "<script>alert(1)</script>", "quote": "\"'`", "formula": "=HYPERLINK(\"x\")",
                                "amp": "&amp;&lt;", "backslash": "\\\\n\\u0000"},
                       "model_family": "<b>fam</b>"}),
        ("hx-unicode", {"tags": {"rtl": "\u202eevil\u202c", "emoji": "\U0001f680" * 64, "zw": "a\u200bb",
                                 "combining": "e\u0301" * 100, "cjk": "\u4e2d\u6587"}, "model_family": "\u00e9" * 64}),
        ("hx-ctl", {"tags": {"tab": "a\tb", "newline": "a\nb", "bell": "\u0007", "del": "\u007f"}}),
    ]


def store_hostile_values(server: Served) -> None:
    with server.client() as c:
        for engine_id, body in hostile_values():
            r = c.put(f"/api/v1/engines/{engine_id}", json=body)
            assert r.status_code == 200, (engine_id, r.text[:300])
            assert r.json()["tags"] == body["tags"], engine_id
        r = c.post("/api/v1/keys", json={"role": "viewer", "name": "\u202e<key> \"q\" " + "k" * 40})
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           tiny_bundle: Path) -> Iterator[Served]:
    settings: dict[str, str] = {"rate_limit_per_s": "0", "anonymous_rate_limit_per_s": "0",
                                "auth_failure_rate_limit_per_s": "0", "http_body_timeout_s": "2"}
    if request.param == "postgresql":
        settings["database_url"] = request.getfixturevalue("postgres").server.create_database()
    with serve(tmp_path_factory.mktemp(f"harden-{request.param}"), tiny_bundle, **settings) as s:
        with s.client() as c:
            assert c.put("/api/v1/engines/e1", json={"tags": {"site": "a"}}).status_code == 200
        yield s


def _post(server: Served, path: str, body: bytes, key: str | None = None, method: str = "POST") -> httpx.Response:
    with server.client(key, timeout=10) as c:
        return c.request(method, path, content=body, headers={"Content-Type": "application/json"})


# ---- 1. JSON limits in linear time, off the loop ---------------------------------------------------
@pytest.mark.parametrize("body", [ESCAPED_63K, ESCAPED_8M], ids=["63KiB", "8MiB"])
@pytest.mark.parametrize(("path", "key"), [("/api/v1/predict", None), ("/api/v1/predict/batch", None),
                                           ("/api/v1/keys", ADMIN), ("/api/v1/engines/e1/readings", ADMIN)])
def test_escaped_quote_bodies_are_a_quick_4xx(server: Served, body: bytes, path: str, key: str | None) -> None:
    r = _post(server, path, body, key)  # 10 s client timeout: before the fix the 63 KiB one took 24 s
    assert r.status_code == 422, r.text[:300]
    assert r.json()["error"] == "ValidationError" and len(r.content) < 1024


def test_valid_json_with_colons_and_escapes_is_still_accepted_and_duplicates_refused(server: Served) -> None:
    with server.client() as c:
        ok = c.put("/api/v1/engines/e1", content=b'{"tags": {"a:b": "c:\\"d\\":e", "\\u003a": 1}}',
                   headers={"Content-Type": "application/json"})
        assert ok.status_code == 200 and ok.json()["tags"] == {"a:b": 'c:"d":e', ":": 1}, ok.text
        dup = c.put("/api/v1/engines/e1", content=b'{"tags": {"a:": 1, "a\\u003a": 2}}',
                    headers={"Content-Type": "application/json"})
        assert dup.status_code == 422 and "duplicate key" in dup.json()["detail"], dup.text


# ---- 3. integers beyond Python's digit limit ------------------------------------------------------
@pytest.mark.parametrize(("path", "body", "key", "method"), [
    ("/api/v1/predict", b'{"engine_id": "e1", "sensor_data": [{"cycle": ' + LONG_INT + b"}]}", None, "POST"),
    ("/api/v1/engines/e1/readings", b'[{"cycle": ' + LONG_INT + b"}]", ADMIN, "POST"),
    ("/api/v1/engines/e1", b'{"tags": {"n": ' + LONG_INT + b"}}", ADMIN, "PUT"),
    ("/api/v1/engines/e1/failure", b'{"cycle": ' + LONG_INT + b"}", ADMIN, "POST"),
], ids=["predict", "ingest", "tags", "failure"])
def test_integers_of_5000_digits_are_a_422(server: Served, path: str, body: bytes, key: str | None,
                                           method: str) -> None:
    r = _post(server, path, body, key, method)
    assert r.status_code == 422, r.text[:300]
    assert "digits" in r.json()["detail"]


def test_mqtt_poison_payloads_are_refused_at_once_without_retries() -> None:
    """The MQTT subscriber parses with the same function: a 5,000-digit integer, an escaped-quote
    payload and a deep one are the sender's mistake (refused, acknowledged), never retried."""
    from prognos.config import Settings
    from prognos.fleet.mqtt import MqttSubscriber, _Slot

    stored: list[Any] = []

    class Ingestor:
        async def ingest(self, engine_id: str, readings: Any) -> Any:
            stored.append((engine_id, readings))

    sub = MqttSubscriber(Settings(mqtt_reconnect_min_s=1), Ingestor())  # type: ignore[arg-type]
    payloads = [b'[{"cycle": ' + LONG_INT + b"}]", ESCAPED_63K, b"[" * 5000 + b"]" * 5000]

    async def run() -> None:
        for payload in payloads:
            await asyncio.wait_for(sub._ingest("prognos/engines/e1/readings", payload, _Slot(1, 1, 0)), 10)

    asyncio.run(run())
    assert sub.counters.refused == len(payloads) and sub.counters.retries == 0 and not stored


# ---- 4. metrics labels from a closed set ----------------------------------------------------------
def _random_methods(server: Served, n: int, rng: random.Random) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(n):
        method = "".join(rng.choices(string.ascii_uppercase, k=201))
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(f"{method} /api/v1/engines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            assert s.recv(64).startswith(b"HTTP/1.1 501"), method


def test_random_methods_are_501_and_do_not_grow_metrics(server: Served) -> None:
    rng = random.Random(19)
    _random_methods(server, 5, rng)  # the one "other" series exists from here on
    httpx.get(f"{server.url}/metrics", timeout=10)
    before = len(httpx.get(f"{server.url}/metrics", timeout=10).content)
    _random_methods(server, 300, rng)
    after = len(httpx.get(f"{server.url}/metrics", timeout=10).content)
    assert abs(after - before) <= 0.01 * before, (before, after)


# ---- 5 and 6. values that cannot be stored: refused alike on both databases ------------------------
@pytest.mark.parametrize(("body", "fragment"), [
    (b'{"tags": {"a": "\\ud800"}}', "surrogate"),
    (b'{"tags": {"a": "\\udfff", "n": NaN}}', "surrogate"),
    (b'{"tags": {"\\ud800": "x"}}', "surrogate"),
    (b'{"tags": {"a": "x\\u0000y"}}', "NUL"),
    (b'{"tags": {"a\\u0000": "x"}}', "NUL"),
    (b'{"tags": {"a": NaN}}', "finite"),
    (b'{"tags": {"a": Infinity}}', "finite"),
    (b'{"tags": {"a": -Infinity}}', "finite"),
    (b'{"tags": {"a": {"nested": 1}}}', "expected a string"),
    (b'{"tags": {"a": "' + b"x" * 257 + b'"}}', "at most 256"),
    (b'{"tags": {"' + b"x" * 65 + b'": 1}}', "at most 64"),
    (b'{"tags": {' + b",".join(b'"t%d": 1' % i for i in range(33)) + b"}}", "at most 32"),
    (b'{"model_family": "' + b"f" * 65 + b'"}', "at most 64"),
    (b'{"model_family": "a\\u0000"}', "NUL"),
    (b'{"model_family": "\\ud800"}', "surrogate"),
], ids=["surrogate-value", "surrogate-and-nan", "surrogate-name", "nul-value", "nul-name", "nan", "inf", "-inf",
        "nested", "value-257", "name-65", "33-tags", "family-65", "family-nul", "family-surrogate"])
def test_values_that_cannot_be_stored_are_refused_and_the_fleet_list_stays_up(server: Served, body: bytes,
                                                                              fragment: str) -> None:
    r = _post(server, "/api/v1/engines/hx-bad", body, ADMIN, "PUT")
    assert r.status_code == 422, r.text[:300]
    assert fragment in r.json()["detail"], r.json()
    with server.client() as c:
        assert c.get("/api/v1/engines/hx-bad").status_code == 404  # nothing was stored
        assert c.get("/api/v1/engines", params={"limit": 5000}).status_code == 200


@pytest.mark.parametrize(("method", "path", "params", "body"), [
    ("GET", "/api/v1/engines", {"q": "a\x00b"}, None),
    ("GET", "/api/v1/engines", {"status": "healthy\x00"}, None),
    ("GET", "/api/v1/alerts", {"status": "open\x00"}, None),
    ("GET", "/api/v1/alerts", {"severity": "\x00"}, None),
    ("GET", "/api/v1/alerts", {"engine_id": "e1\x00"}, None),
    ("GET", "/api/v1/alerts", {"kind": "\x00"}, None),
    ("GET", "/api/v1/alerts", {"target_kind": "x\x00"}, None),
    ("POST", "/api/v1/engines/e1%00x/failure", None, {"cycle": 5}),
    ("POST", "/api/v1/keys", None, {"role": "viewer", "name": "k\x00"}),
    ("POST", "/api/v1/keys", None, {"role": "viewer", "name": "k" * 65}),
    ("POST", "/api/v1/engines/e1/failure", None, {"cycle": True}),
], ids=["q", "status", "alert-status", "severity", "alert-engine", "kind", "target-kind", "failure-id", "key-nul",
        "key-long", "cycle-true"])
def test_postgresql_only_500s_are_the_same_422_on_both(server: Served, method: str, path: str,
                                                       params: dict[str, str] | None, body: Any) -> None:
    with server.client() as c:
        r = c.request(method, path, params=params, json=body)
    assert r.status_code == 422, r.text[:300]
    assert set(r.json()) == {"error", "detail"}


def test_hostile_but_valid_values_are_stored_and_served_back(server: Served) -> None:
    store_hostile_values(server)
    with server.client() as c:
        page = c.get("/api/v1/engines", params={"q": "hx-", "limit": 5000})
        assert page.status_code == 200
        got = {e["engine_id"]: e["tags"] for e in page.json()["items"]}
        for engine_id, body in hostile_values():
            assert got[engine_id] == body["tags"], engine_id
        assert c.get("/api/v1/keys").status_code == 200


# ---- 7. nothing echoes a whole value ----------------------------------------------------------------
@pytest.mark.parametrize(("path", "body", "method"), [
    ("/api/v1/predict", b'{"' + b"k" * 2**20 + b'": 1, "engine_id": "e1", "sensor_data": []}', "POST"),
    ("/api/v1/predict", b'{"engine_id": "e1", "sensor_data": [{"' + b"k" * 2**20 + b'": 1}]}', "POST"),
    ("/api/v1/keys", b'{"role": "viewer", "' + b"k" * 2**20 + b'": 1}', "POST"),
    ("/api/v1/keys", b'{"role": "' + b"r" * 2**20 + b'"}', "POST"),
    ("/api/v1/engines/e1", b'{"' + b"k" * 2**20 + b'": 1}', "PUT"),
    ("/api/v1/engines/e1", b'{"tags": {"' + b"k" * 2**20 + b'": 1}}', "PUT"),
    ("/api/v1/engines/e1", b'{"a": 1, "a": "' + b"v" * 2**20 + b'"}', "PUT"),
], ids=["predict-field", "reading-field", "keys-field", "keys-role", "engine-field", "tag-name", "duplicate"])
def test_errors_quote_at_most_a_bounded_part_of_a_value(server: Served, path: str, body: bytes, method: str) -> None:
    r = _post(server, path, body, ADMIN, method)
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 1024, len(r.content)
    assert "k" * 1000 not in server.output()  # nor the log (the last 4000 characters of it)


# ---- 9. uploads ---------------------------------------------------------------------------------------
def test_put_on_an_upload_route_is_405_not_415(server: Served) -> None:
    with server.client() as c:
        r = c.put("/api/v1/readings/upload", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 405 and "POST" in r.headers["allow"], r.text


# ---- 10. smaller ones ----------------------------------------------------------------------------------
def test_redirects_do_not_copy_the_host_header(server: Served) -> None:
    with server.client(follow_redirects=False) as c:
        r = c.get("/api/v1/engines/", headers={"Host": "evil.example"})
    assert r.status_code in (307, 308), r.status_code
    assert "evil.example" not in r.headers["location"] and r.headers["location"].startswith("/")


def test_headers_over_16_kib_in_one_segment_are_431(server: Served) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /api/v1/engines HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 17_000 + b"\r\n\r\n")
        answer = s.recv(64)
    assert answer.startswith(b"HTTP/1.1 431") or answer.startswith(b"HTTP/1.1 400"), answer


def test_docs_load_nothing_from_a_cdn(server: Served) -> None:
    for path in ("/docs", "/redoc"):
        r = httpx.get(f"{server.url}{path}", timeout=10)
        assert r.status_code == 404 and "cdn" not in r.text.lower(), path


def test_openapi_declares_its_security_scheme_and_every_status(server: Served) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API key (pk_...) or the admin token"}
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    assert ops[("GET", "/api/v1/engines")]["security"] == [{"bearer": []}]
    assert ops[("POST", "/api/v1/predict")]["security"] == [{}, {"bearer": []}]
    assert ops[("GET", "/health")]["security"] == []
    assert {"409", "429", "401", "403"} <= set(ops[("POST", "/api/v1/alerts/{alert_id}/acknowledge")]["responses"])
    assert {"408", "413", "415", "429"} <= set(ops[("POST", "/api/v1/predict")]["responses"])


def test_a_plan_is_computed_once_for_concurrent_viewers(server: Served) -> None:
    with server.client() as c:
        answers = []

        def ask() -> None:
            answers.append(c.get("/api/v1/plan", params={"horizon": 17}))

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [r.status_code for r in answers] == [200] * 4
    assert len({r.json()["generated_at"] for r in answers}) == 1  # one computation, shared


def test_the_sqlite_database_is_owner_only(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle) as s, s.client() as c:
        assert c.get("/api/v1/engines").status_code == 200
    mode = stat.S_IMODE(os.stat(tmp_path / "state" / "prognos.db").st_mode)
    assert mode == 0o600, oct(mode)


def test_x_forwarded_for_is_ignored_and_401s_are_rate_limited(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, anonymous_rate_limit_per_s="1", anonymous_rate_limit_burst="5",
               auth_failure_rate_limit_per_s="1", auth_failure_rate_limit_burst="5") as s:
        body = {"engine_id": "e1", "sensor_data": readings(tiny_bundle, 25)}
        statuses = []
        with s.client(None) as c:
            for i in range(20):  # a new "client address" per request: must not buy a new bucket
                statuses.append(c.post("/api/v1/predict", json=body,
                                       headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code)
        assert statuses.count(429) >= 10, statuses
        with s.client("pk_guess") as c:
            guesses = [c.get("/api/v1/engines").status_code for _ in range(20)]
        assert guesses.count(401) <= 7 and guesses.count(429) >= 13, guesses


# ---- 2. slow bodies ---------------------------------------------------------------------------------------
def test_300_slow_bodies_do_not_starve_others_and_are_cut_at_the_deadline(tmp_path: Path,
                                                                         tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0", anonymous_rate_limit_per_s="0",
               http_body_timeout_s="3") as s:
        viewer = s.key("viewer")
        host, port = s.url.removeprefix("http://").split(":")
        slow = []
        for i in range(300):  # headers and one byte of a 1000-byte body, then nothing
            if i % 25 == 0:
                # 25 at a time: connections arriving all at once cost the loop ~0.3 ms each in ONE
                # iteration (accept, parse, answer), which is load, not a stall this test is about
                time.sleep(0.02)
            sock = socket.create_connection((host, int(port)), timeout=15)
            sock.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n{")
            slow.append(sock)
        body = {"engine_id": "e1", "sensor_data": readings(tiny_bundle, 25)}
        with s.client(viewer) as c:
            for _ in range(5):
                assert c.get("/api/v1/engines").status_code == 200
                assert c.post("/api/v1/predict", json=body).status_code == 200
            assert c.get("/ready").status_code == 200  # true: the others are served
        answers = []
        for sock in slow:
            try:
                answers.append(sock.recv(64)[:12])
            except (TimeoutError, ConnectionResetError):
                answers.append(b"")
            sock.close()
        # Each slow client got its answer: 429 at once past its in-flight cap, 408 at the deadline.
        assert {a for a in answers} <= {b"HTTP/1.1 408", b"HTTP/1.1 429"}, set(answers)
        assert answers.count(b"HTTP/1.1 408") >= 1 and answers.count(b"HTTP/1.1 429") >= 1
