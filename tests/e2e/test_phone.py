"""The dashboard on a 390 px phone in real Chromium: every page, with every section filled (a recorded
failure fills the live-performance table, a drift check the drift tables), fits the width — no
sideways scroll — and every table cell keeps its column's name once rows become cards. Also the
first-day states: an empty fleet says how to add engines; a missing engine says "not found" and
stops polling; the alert list filters by kind, severity and state.

Screenshots of every page go to ``$PROGNOS_E2E_SCREENSHOTS`` (phone-*.png)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.synthetic import synthetic_fleet
from prognos.fleet.simulate import simulate
from tests.e2e.conftest import LiveServer, wait_until

PHONE = {"width": 390, "height": 844}
ADMIN = "e2e-phone-admin-token"
# Drift gets a verdict after a handful of captured requests, so its tables show on the models page.
SERVER_ENV = {"PROGNOS_DRIFT_SAMPLE_RATE": "1", "PROGNOS_DRIFT_MIN_SAMPLES": "10", "PROGNOS_DRIFT_MIN_ENGINES": "2",
              "PROGNOS_ADMIN_TOKEN": ADMIN}

# Content the page shows once its data is in (what a person would wait for).
PAGES = {
    "signin": ("/ui/signin", "#signin-form"),
    "fleet": ("/ui/fleet", "#fleet-rows tr"),
    "engine": ("/ui/engines/{engine}", "#rul-chart svg path.line"),
    "alerts": ("/ui/alerts", "#alerts-list table"),
    "models": ("/ui/models", "#drift-title ~ .table-wrap table"),
    "plan": ("/ui/plan", "#plan-rows tr"),
    "engine-not-found": ("/ui/engines/NO-SUCH-ENGINE", "#engine-missing:not([hidden])"),
}

# Cells of card-style tables (all but the two-column metric tables) that lack their column's name.
UNLABELLED = """[...document.querySelectorAll('table.data:not(.metrics) tbody tr:not(.spacer) > *')]
  .filter((c) => !c.dataset.label).map((c) => c.outerHTML.slice(0, 80))"""
# Elements whose right edge lies beyond the viewport (what makes a page scroll sideways).
STICKING_OUT = """[...document.querySelectorAll('body *')].filter((e) => {
  const r = e.getBoundingClientRect(); return r.width > 1 && r.right > window.innerWidth + 0.5;
}).slice(0, 5).map((e) => `${e.tagName}.${e.className} right=${e.getBoundingClientRect().right}`)"""


@pytest.fixture()
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    ctx = browser.new_context(viewport=PHONE)
    ctx.add_init_script(f"sessionStorage.setItem('prognos.apiKey', {live_server.operator_key!r})")
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    ctx.close()


def test_an_empty_fleet_says_how_to_add_engines(live_server: LiveServer, phone: Any) -> None:
    from playwright.sync_api import expect

    with live_server.api() as api:
        assert api.get("/api/v1/engines").json()["items"] == []  # this module's server starts empty
    phone.goto(live_server.url + "/ui/fleet")
    none = phone.locator("#fleet-none")
    expect(none).to_be_visible()
    expect(none).to_contain_text(f"prognos simulate --url {live_server.url} --api-key KEY --synthetic 20")
    expect(none).to_contain_text("make demo")
    expect(phone.locator("#fleet-table")).to_be_hidden()
    phone.goto(live_server.url + "/ui/plan")
    expect(phone.locator("#plan-empty")).to_contain_text("No engines yet")
    assert phone.errors == []


@pytest.fixture(scope="module")
def filled(live_server: LiveServer) -> dict[str, str]:
    """Engines replayed to failure (RUL alerts open), a refused implausible reading (an out-of-range
    alert), a recorded failure (live performance) and a drift check (drift tables). Returns an engine
    id with history."""
    fleet = synthetic_fleet(6, seed=31, id_prefix="PH-", min_life=130, max_life=180)
    assert simulate(live_server.url, live_server.operator_key, fleet, speed=0).ok
    with live_server.api() as api:
        engine = api.get("/api/v1/engines", params={"sort": "rul"}).json()["items"][0]
        r = api.post(f"/api/v1/engines/{engine['engine_id']}/failure", json={"cycle": engine["last_cycle"]})
        assert r.status_code in (200, 201), r.text
        bad = dict(zip(MEASUREMENT_FIELDS, map(float, fleet.values[0]), strict=True))
        r = api.post("/api/v1/engines/PH-2/readings", json=[{**bad, "cycle": 10_000, "s4": 1e9}])
        assert r.status_code == 422, r.text
    with live_server.api(ADMIN) as admin:
        r = admin.post("/api/v1/models/drift/check")
        assert r.status_code == 200, r.text
        assert r.json()["features"], r.text  # a verdict with per-feature figures
    return {"engine": engine["engine_id"]}


def test_every_page_fits_a_phone(live_server: LiveServer, filled: dict[str, str], phone: Any, screens: Path) -> None:
    for name, (path, ready) in PAGES.items():
        phone.goto(live_server.url + path.format(**filled))
        phone.wait_for_selector(ready, state="visible")
        if name == "models":
            phone.wait_for_selector("#perf-title ~ .table-wrap table", state="visible")
        phone.screenshot(path=str(screens / f"phone-{name}.png"), full_page=True)
        fits = phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, f"{path} scrolls sideways at 390 px: {phone.evaluate(STICKING_OUT)}"
        assert phone.evaluate(UNLABELLED) == [], f"{path}: table cells without their column's name"
    assert phone.errors == []


def test_models_page_shows_words_and_scores_with_context(live_server: LiveServer, filled: dict[str, str],
                                                         phone: Any) -> None:
    from playwright.sync_api import expect

    phone.goto(live_server.url + "/ui/models")
    models = phone.locator("#models")
    expect(models).to_contain_text("RMSE without the age correction")
    expect(models).to_contain_text("per prediction")  # the PHM08 score beside its mean per prediction
    text = models.inner_text() + phone.locator("#lifecycle").inner_text()
    assert "rmse_before_age_correction" not in text and "n_windows" not in text
    assert "Bundle" not in phone.locator("#models .facts").inner_text()
    assert phone.errors == []


def test_a_missing_engine_says_not_found_and_stops_polling(live_server: LiveServer, phone: Any) -> None:
    from playwright.sync_api import expect

    asked: list[str] = []
    phone.on("request", lambda r: asked.append(r.url) if "/api/v1/engines/NO-SUCH" in r.url else None)
    phone.goto(live_server.url + "/ui/engines/NO-SUCH-ENGINE")
    expect(phone.locator("#engine-missing")).to_contain_text("Engine not found")
    expect(phone.locator("#engine-sections")).to_be_hidden()
    expect(phone.locator("#live")).to_have_text("stopped")
    seen = len(asked)
    # Three poll periods later (3 s each) no page has asked again.
    phone.wait_for_timeout(3 * 3000 + 500)
    assert len(asked) == seen == 1, asked
    assert phone.errors == []


def test_alerts_filter_by_kind_severity_and_state(live_server: LiveServer, filled: dict[str, str],
                                                  phone: Any) -> None:
    from playwright.sync_api import expect

    with live_server.api() as api:
        every = api.get("/api/v1/alerts", params={"status": "open,acknowledged,resolved"}).json()["items"]
    kinds = {a["kind"] for a in every}
    assert {"rul_low", "out_of_range"} <= kinds, kinds
    phone.goto(live_server.url + "/ui/alerts")
    rows = phone.locator("#alerts-list tbody tr")
    phone.get_by_label("Status").select_option("")
    phone.get_by_label("Kind").select_option("out_of_range")
    expect(rows).to_have_count(sum(a["kind"] == "out_of_range" for a in every))
    expect(rows.first).to_contain_text("out of range")
    assert "kind=out_of_range" in phone.url
    phone.get_by_label("Kind").select_option("rul_low")
    phone.get_by_label("Severity").select_option("critical")
    want = [a for a in every if a["kind"] == "rul_low" and a["severity"] == "critical"]
    assert want
    expect(rows).to_have_count(len(want))
    phone.get_by_label("Status").select_option("resolved")
    resolved = [a for a in want if a["status"] == "resolved"]
    if resolved:
        expect(rows).to_have_count(len(resolved))
    else:
        expect(phone.locator("#alerts-list")).to_contain_text("No alerts")
    wait_until(lambda: "status=resolved" in phone.url, 5, "the filters in the address")
    assert phone.errors == []
