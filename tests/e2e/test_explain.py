"""Explanations in real headless Chromium against the real server: the engine page lists the channels
driving the current RUL (the API's own top channels) and marks each on its sensor chart, with the
readings the prediction rests on shaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prognos.data.synthetic import synthetic_fleet
from prognos.fleet.simulate import simulate
from tests.e2e.conftest import LiveServer

UI_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def engine_id(live_server: LiveServer) -> str:
    fleet = synthetic_fleet(1, seed=23, id_prefix="XPL-", min_life=130, max_life=150)
    summary = simulate(live_server.url, live_server.operator_key, fleet, speed=0)
    assert summary.ok, summary.describe()
    return next(fleet.engines()).engine_id


@pytest.fixture()
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_init_script(f"sessionStorage.setItem('prognos.apiKey', {live_server.viewer_key!r})")
    page = ctx.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    ctx.close()


def test_engine_page_shows_the_top_channels_and_marks_them_on_their_charts(
        live_server: LiveServer, engine_id: str, page: Any, screens: Path) -> None:
    from playwright.sync_api import expect

    with live_server.api(live_server.viewer_key) as api:
        r = api.get(f"/api/v1/engines/{engine_id}", params={"explain": "true"})
    assert r.status_code == 200, r.text
    e = r.json()["latest_prediction"]["explanation"]
    top = [c["field"] for c in e["contributions"][:3]]
    page.goto(f"{live_server.url}/ui/engines/{engine_id}")

    rows = page.locator("#top-drivers tbody tr")
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-field") for i in range(3)] == top
    first = e["contributions"][0]
    expect(rows.nth(0)).to_contain_text(first["name"])
    expect(page.locator("#explanation")).to_contain_text(f"since cycle {e['since_cycle']}")

    # Exactly the top channels' charts are marked, each with the rested-on readings shaded.
    drivers = page.locator("#sensor-charts figure.mini.driver")
    expect(drivers).to_have_count(3)
    assert sorted(drivers.nth(i).get_attribute("data-sensor") for i in range(3)) == sorted(top)
    for rank, field in enumerate(top, start=1):
        fig = page.locator(f'#sensor-charts figure[data-sensor="{field}"]')
        expect(fig.locator("figcaption")).to_contain_text(f"driver #{rank}")
        expect(fig.locator("svg rect.highlight")).to_have_count(1)
        expect(fig.locator("svg rect.highlight title")).to_have_text(
            f"{e['contributions'][rank - 1]['name']}: the readings since cycle {e['since_cycle']} drive the RUL")
    others = page.locator("#sensor-charts figure.mini:not(.driver) svg rect.highlight")
    expect(others).to_have_count(0)
    # The shading sits at the right end of the chart: the latest readings.
    box = page.locator(f'#sensor-charts figure[data-sensor="{top[0]}"] svg rect.highlight').bounding_box()
    svg = page.locator(f'#sensor-charts figure[data-sensor="{top[0]}"] svg').bounding_box()
    assert box is not None and svg is not None and box["x"] + box["width"] > svg["x"] + 0.8 * svg["width"]
    page.locator("#explain-card").screenshot(path=str(screens / "desktop-explanation.png"))
    page.locator("#sensor-charts").screenshot(path=str(screens / "desktop-explanation-charts.png"))
    assert page.errors == []


def test_models_page_shows_global_importance_per_channel(live_server: LiveServer, page: Any, screens: Path) -> None:
    from playwright.sync_api import expect

    with live_server.api(live_server.viewer_key) as api:
        g = api.get("/api/v1/models").json()["manifest"]["explanations"]
    page.goto(f"{live_server.url}/ui/models")
    rows = page.locator("#global-importance tbody tr")
    expect(rows).to_have_count(len(g["channels"]))
    assert [rows.nth(i).get_attribute("data-field") for i in range(rows.count())] == [
        c["field"] for c in g["channels"]]
    expect(rows.nth(0)).to_contain_text(g["channels"][0]["name"])
    expect(page.locator("#models")).to_contain_text(g["source"])
    page.locator("#global-importance").screenshot(path=str(screens / "desktop-global-importance.png"))
    assert page.errors == []
