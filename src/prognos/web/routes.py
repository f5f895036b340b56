"""The dashboard's router: ``/`` and the ``/ui/...`` pages, plus its static files.

The pages hold no fleet data and need no key: each is a shell that its script fills from the
REST API with the API key the visitor typed on the sign-in page (kept in ``sessionStorage``,
sent as ``Authorization: Bearer``). So access control stays in one place, the API.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from prognos.config import Settings

__all__ = ["PAGES", "build_router"]

#: Page (template) name -> title. The navigation bar links the pages in ``_NAV``.
PAGES: dict[str, str] = {
    "signin": "Sign in",
    "fleet": "Fleet",
    "engine": "Engine",
    "alerts": "Alerts",
    "models": "Models",
    "plan": "Plan",
}
_NAV = ("fleet", "plan", "alerts", "models")

# Pages are plain shells; a browser may keep them briefly, but must revalidate static files
# (their ETag changes with their content) so a new release is picked up without a hard reload.
_HTML_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# Everything the pages load comes from this server: the policy makes a CDN reference fail loudly.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@dataclass(frozen=True)
class StaticFile:
    """One file under ``web/static``, read once at start-up."""

    body: bytes
    media_type: str
    etag: str


def _static_files() -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    for entry in resources.files("prognos.web").joinpath("static").iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        body = entry.read_bytes()
        media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        if entry.name.endswith(".js"):
            media = "text/javascript"  # the only type browsers accept for ES modules everywhere
        files[entry.name] = StaticFile(body, media, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return files


def build_router(settings: Settings, *, poll_seconds: float = 3.0) -> APIRouter:
    """The dashboard's routes. ``poll_seconds``: how often open pages refresh their data (s)."""
    env = Environment(loader=PackageLoader("prognos.web", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    static = _static_files()
    asset_version = hashlib.sha256(b"".join(f.etag.encode() for f in static.values())).hexdigest()[:10]
    config = {
        "warning_rul": settings.warning_rul,
        "critical_rul": settings.critical_rul,
        # Alerts fire when the interval's lower bound crosses these; the charts draw them.
        "alert_warning_rul": settings.alert_warning_rul,
        "alert_critical_rul": settings.alert_critical_rul,
        "poll_ms": round(poll_seconds * 1000),
    }
    router = APIRouter(include_in_schema=False)

    def page(name: str, **context: object) -> HTMLResponse:
        html = env.get_template(f"{name}.html").render(
            page=name, title=PAGES[name], nav=[(n, PAGES[n]) for n in _NAV], config=config, v=asset_version,
            **context,
        )
        return HTMLResponse(html, headers={**_HTML_HEADERS, "Content-Security-Policy": _CSP})

    @router.get("/")
    def index() -> RedirectResponse:
        """The dashboard's front door: the fleet view (which sends visitors without a key to sign in)."""
        return RedirectResponse("/ui/fleet", status_code=307)

    @router.get("/ui")
    @router.get("/ui/")
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/fleet", status_code=307)

    @router.get("/ui/signin", response_class=HTMLResponse)
    def signin() -> HTMLResponse:
        return page("signin")

    @router.get("/ui/fleet", response_class=HTMLResponse)
    def fleet() -> HTMLResponse:
        return page("fleet")

    @router.get("/ui/engines/{engine_id}", response_class=HTMLResponse)
    def engine(engine_id: Annotated[str, Path(min_length=1, max_length=200)]) -> HTMLResponse:
        return page("engine", engine_id=engine_id)

    @router.get("/ui/alerts", response_class=HTMLResponse)
    def alerts() -> HTMLResponse:
        return page("alerts")

    @router.get("/ui/models", response_class=HTMLResponse)
    def models() -> HTMLResponse:
        return page("models")

    @router.get("/ui/plan", response_class=HTMLResponse)
    def plan() -> HTMLResponse:
        return page("plan")

    @router.get("/ui/static/{name}")
    def static_file(name: str, request: Request) -> Response:
        f = static.get(name)
        if f is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {"ETag": f.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == f.etag:
            return Response(status_code=304, headers=headers)
        return Response(f.body, media_type=f.media_type, headers=headers)

    return router
