"""The maintenance plan end to end: the API, the CLI and the dashboard page (Chromium, desktop and
phone width, screenshots) agree on the same engines in the same order, and the rule holds for
every engine of a fleet at several stages of life."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from prognos.data.synthetic import synthetic_fleet
from prognos.fleet.simulate import simulate
from tests.e2e.conftest import LiveServer

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
HORIZON = 30
CRITICAL = 25.0  # the live server's critical threshold (PROGNOS_ALERT_CRITICAL_RUL in tests/e2e/conftest.py)


@pytest.fixture(scope="module")
def fleet(live_server: LiveServer) -> LiveServer:
    """Engines at the end of life (replayed to failure) and young ones (their first 40 cycles)."""
    old = synthetic_fleet(6, seed=11, id_prefix="OLD-", min_life=130, max_life=180)
    young = synthetic_fleet(4, seed=12, id_prefix="NEW-", min_life=200, max_life=260)
    for part, cycles in ((old, None), (young, 40)):
        summary = simulate(live_server.url, live_server.operator_key, part, speed=0, max_cycles=cycles)
        assert summary.ok, summary.describe()
    return live_server


@pytest.fixture()
def page_at(browser: Any, fleet: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    contexts = []

    def make(viewport: dict[str, int]) -> Any:
        ctx = browser.new_context(viewport=viewport, accept_downloads=True)
        ctx.add_init_script(f"sessionStorage.setItem('prognos.apiKey', {fleet.viewer_key!r})")
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def _api_plan(server: LiveServer, horizon: int = HORIZON) -> dict[str, Any]:
    with server.api(server.viewer_key) as api:
        r = api.get("/api/v1/plan", params={"horizon": horizon})
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_the_rule_holds_for_every_engine(fleet: LiveServer) -> None:
    plan = _api_plan(fleet)
    assert plan["horizon"] == HORIZON and plan["critical_rul"] == CRITICAL
    with fleet.api(fleet.viewer_key) as api:
        engines = api.get("/api/v1/engines", params={"limit": 1000}).json()["items"]
    scored = {e["engine_id"]: e for e in engines if e["lower"] is not None}
    planned = [i["engine_id"] for i in plan["items"]]
    assert planned, "engines replayed to failure must be due"
    assert plan["engines_considered"] == len(scored)
    for engine_id, e in scored.items():
        assert (engine_id in planned) == (e["lower"] - HORIZON <= CRITICAL), e
    due = [(i["due_in"], -i["probability"], i["engine_id"]) for i in plan["items"]]
    assert due == sorted(due)  # most urgent first
    for i in plan["items"]:
        assert 0.0 <= i["probability"] <= 1.0 and i["lower"] <= i["rul"] <= i["upper"]
        assert i["due_in"] == pytest.approx(max(0.0, i["lower"] - CRITICAL))
    # A longer horizon plans at least the same engines; the probability of each only grows.
    longer = {i["engine_id"]: i for i in _api_plan(fleet, HORIZON + 60)["items"]}
    assert set(planned) <= set(longer)
    assert all(longer[i["engine_id"]]["probability"] >= i["probability"] for i in plan["items"])


def test_api_and_cli_agree_and_csv_exports_the_same(fleet: LiveServer) -> None:
    plan = _api_plan(fleet)
    order = [i["engine_id"] for i in plan["items"]]
    cli = subprocess.run([sys.executable, "-m", "prognos.cli", "plan", "--horizon", str(HORIZON), "--format", "json"],
                         env=fleet.env, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert [i["engine_id"] for i in json.loads(cli.stdout)["items"]] == order
    table = subprocess.run([sys.executable, "-m", "prognos.cli", "plan", "--horizon", str(HORIZON)], env=fleet.env,
                           capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and f"{len(order)} of {plan['engines_considered']} engines" in table.stdout
    with fleet.api(fleet.viewer_key) as api:
        r = api.get("/api/v1/plan", params={"horizon": HORIZON, "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["engine_id"] for row in rows] == order
        assert api.get("/api/v1/plan", params={"horizon": -1}).status_code == 422
        assert api.get("/api/v1/plan", params={"format": "yaml"}).status_code == 422
    with fleet.api("pk_not_a_key") as anonymous:
        assert anonymous.get("/api/v1/plan").status_code == 401


def test_plan_page_desktop_and_phone(fleet: LiveServer, page_at: Any, screens: Any) -> None:
    from playwright.sync_api import expect

    order = [i["engine_id"] for i in _api_plan(fleet)["items"]]
    page = page_at(DESKTOP)
    page.goto(fleet.url + "/ui/plan")
    rows = page.locator("#plan-rows tr")
    expect(rows).to_have_count(len(order))
    assert [r.get_attribute("data-id") for r in rows.all()] == order
    expect(page.get_by_role("link", name="Plan")).to_have_attribute("aria-current", "page")
    expect(page.locator("#plan-summary")).to_contain_text(f"{len(order)} of")
    page.screenshot(path=str(screens / "desktop-plan.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = download.value.path().read_text(encoding="utf-8")
    assert [row["engine_id"] for row in csv.DictReader(io.StringIO(text))] == order
    page.get_by_label("Horizon (cycles)").fill("0")
    shorter = [i["engine_id"] for i in _api_plan(fleet, 0)["items"]]
    expect(rows).to_have_count(len(shorter))
    assert page.url.endswith("?horizon=0")
    assert page.errors == []

    phone = page_at(PHONE)
    phone.goto(fleet.url + "/ui/plan")
    expect(phone.locator("#plan-rows tr")).to_have_count(len(order))
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.screenshot(path=str(screens / "phone-plan.png"), full_page=True)
    assert phone.errors == []
