"""The REST front end: ``create_app(settings, service, authenticator)``."""

from prognos.serving.http.app import create_app

__all__ = ["create_app"]
