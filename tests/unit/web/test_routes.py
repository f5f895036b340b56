"""The dashboard router: page shells, static files, and the offline guarantee (nothing loaded from
another origin). The pages' behaviour in a browser is tested in ``tests/e2e``."""

from __future__ import annotations

import asyncio
import re
from importlib import resources

import httpx
import pytest
from fastapi import FastAPI

from prognos.config import get_settings
from prognos.web import build_router
from prognos.web.routes import PAGES


def _get(path: str, **headers: str) -> httpx.Response:
    app = FastAPI()
    app.include_router(build_router(get_settings(warning_rul=50, critical_rul=20), poll_seconds=1.5))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def _package_files() -> dict[str, str]:
    root = resources.files("prognos.web")
    out = {}
    for folder in ("templates", "static"):
        for f in root.joinpath(folder).iterdir():
            out[f"{folder}/{f.name}"] = f.read_text(encoding="utf-8")
    return out


def test_root_goes_to_the_fleet_view() -> None:
    r = _get("/")
    assert r.status_code == 307 and r.headers["location"] == "/ui/fleet"


@pytest.mark.parametrize("path", ["/ui/signin", "/ui/fleet", "/ui/alerts", "/ui/models", "/ui/engines/FD001-test-7"])
def test_pages_are_html_shells_with_their_script_and_settings(path: str) -> None:
    r = _get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    name = "engine" if "/engines/" in path else path.rsplit("/", 1)[-1]
    assert f'src="/ui/static/{name}.js?v=' in page
    assert 'data-warning-rul="50.0"' in page and 'data-critical-rul="20.0"' in page and 'data-poll-ms="1500"' in page
    assert '<html lang="en">' in page and 'name="viewport"' in page
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_engine_id_is_escaped_in_the_page() -> None:
    r = _get("/ui/engines/%3Cscript%3Ealert(1)%22")
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)&#34;" in r.text


def test_signin_form_field_has_a_label() -> None:
    page = _get("/ui/signin").text
    assert '<label for="api-key">' in page and 'id="api-key"' in page and 'type="password"' in page


def test_static_files_have_types_and_etags() -> None:
    js = _get("/ui/static/fleet.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = _get("/ui/static/app.css")
    assert css.headers["content-type"].startswith("text/css") and "@media (max-width" in css.text
    again = _get("/ui/static/app.css", **{"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("name", ["missing.js", "..%2Froutes.py", "%2E%2E%2F__init__.py"])
def test_only_packaged_static_files_are_served(name: str) -> None:
    assert _get(f"/ui/static/{name}").status_code == 404


def test_every_page_module_exists() -> None:
    files = _package_files()
    for name in PAGES:
        assert f"templates/{name}.html" in files and f"static/{name}.js" in files


def test_nothing_is_loaded_from_another_origin() -> None:
    # Offline by construction: no CDN, no absolute URL in any page, script or stylesheet.
    for name, text in _package_files().items():
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[/\w.-]*", text)
                if u != "http://www.w3.org/2000/svg"]  # an XML namespace name, never fetched
        assert not urls, f"{name} references {urls}"
        assert "@import" not in text, name


def test_scripts_import_only_sibling_modules() -> None:
    for name, text in _package_files().items():
        if name.endswith(".js"):
            for target in re.findall(r'from\s+"([^"]+)"', text):
                assert target.startswith("./") and f"static/{target[2:]}" in _package_files(), (name, target)


def test_public_names() -> None:
    import prognos.fleet.simulate as simulate_module
    import prognos.web as web

    assert web.__all__ == ["build_router"]
    assert sorted(simulate_module.__all__) == ["LivingFleet", "SimulationError", "SimulationSummary", "Unit",
                                               "living_units", "load_replay_fleet", "reading_payload", "simulate",
                                               "simulate_async", "simulate_living", "simulate_living_async"]
