"""The fleet dashboard: server-rendered page shells (Jinja2) whose hand-written JS reads the REST
API with the visitor's API key. No CDN, no build step: everything ships inside the package."""

from prognos.web.routes import build_router

__all__ = ["build_router"]
