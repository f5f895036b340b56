"""One upload at a time per key (issue 19): a second upload from the same key while the first is
being parsed is 429 at once (not a second 64 MiB in memory); another key's upload is unaffected,
and the same key may upload again once the first is done."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from prognos.data.synthetic import synthetic_fleet
from tests.helpers import cmapss_text
from tests.integration.fleet.conftest import LiveApp

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_a_second_upload_of_the_same_key_is_429_while_the_first_is_parsed(live: LiveApp,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = cmapss_text(synthetic_fleet(2, seed=3)).encode()
    entered, release = threading.Event(), threading.Event()
    parse = live.fleet.ingestor.parse_file

    def gated(*args: Any, **kwargs: Any) -> Any:  # the real parser, held until the test lets it go
        entered.set()
        assert release.wait(30)
        return parse(*args, **kwargs)

    monkeypatch.setattr(live.fleet.ingestor, "parse_file", gated)
    operator, other = live.key("operator"), live.key("operator")
    first: list[httpx.Response] = []

    def upload_first() -> None:
        with live.client(operator) as c:
            first.append(c.post("/api/v1/readings/upload", params={"engine_prefix": "a"},
                                files={"file": ("a.txt", text, "text/plain")}))

    thread = threading.Thread(target=upload_first)
    thread.start()
    try:
        assert entered.wait(30)
        with live.client(operator) as c:
            second = c.post("/api/v1/readings/upload", params={"engine_prefix": "b"},
                            files={"file": ("b.txt", text, "text/plain")})
        assert second.status_code == 429, second.text
        assert second.json()["error"] == "RateLimitedError" and int(second.headers["retry-after"]) >= 1
    finally:
        release.set()
        thread.join(30)
    assert first[0].status_code == 201, first[0].text
    with live.client(other) as c:  # another key, and then the same key again: admitted
        assert c.post("/api/v1/readings/upload", params={"engine_prefix": "c"},
                      files={"file": ("c.txt", text, "text/plain")}).status_code == 201
    with live.client(operator) as c:
        assert c.post("/api/v1/readings/upload", params={"engine_prefix": "d"},
                      files={"file": ("d.txt", text, "text/plain")}).status_code == 201
