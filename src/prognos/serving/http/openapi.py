"""The OpenAPI document states what the server really answers.

FastAPI documents only each route's success and its own 422 body (an array of errors); prognos
answers every error with :data:`~prognos.serving.http.errors.ERROR_BODY_SCHEMA` and can answer
more statuses than a route declares. :func:`document_errors` adds, to every operation, each status
the edge can give it, derived from the route itself (so a new route is documented without
anyone remembering to):

=====  ==========================================================================================
 401   a role is required (or a key was given to predict) and it is missing or unknown
 403   the key's role is too weak
 404   the path names an engine / alert / key / version
 405   (not listed per operation: any undeclared method, with a correct ``Allow``; likewise 431,
       headers over 16 KiB, and 501, a method outside GET HEAD POST PUT PATCH DELETE OPTIONS)
 408   a request body that did not arrive within ``http_body_timeout_s``
 409   a write that conflicts with what is stored (every write a role may make)
 413   a request body over the size limit (uploads: their own limit)
 415   a request body that is not application/json (uploads: not multipart/form-data)
 422   a parameter or body field is wrong (the detail names it)
 429   over the caller's rate limit, or too many of its requests in flight (``Retry-After``)
 503   overloaded, no model, or the database cannot store writes (``Retry-After``)
=====  ==========================================================================================

The document declares its security scheme (``bearer``: ``Authorization: Bearer <key>``) and, per
operation, whether a key is required (a role), optional (predictions) or not used (health, metrics).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from prognos.serving.http.errors import ERROR_BODY_SCHEMA

__all__ = ["document_errors"]

_REASONS = {
    400: "the multipart body could not be parsed",
    401: "missing or unknown API key (Authorization: Bearer <key>)",
    403: "the key's role is too weak for this operation",
    408: "the request body did not arrive in time",
    404: "no such resource",
    409: "conflicts with what is stored",
    413: "request body larger than the limit",
    415: "request body is not of the accepted media type",
    422: "a parameter or field is wrong; the detail names it",
    429: "over the rate limit, or too many requests of this client in flight; retry after Retry-After seconds",
    503: "overloaded, no model loaded, or storage unavailable; retry after Retry-After seconds",
}
_SCHEME = "bearer"
_EXEMPT = frozenset({"/health", "/ready", "/health/detailed", "/metrics"})


def _dependency_names(route: Any) -> set[str]:
    names: set[str] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        names.add(getattr(dep.call, "__name__", ""))
        stack.extend(dep.dependencies)
    return names


def _statuses(route: Any, operation: dict[str, Any]) -> set[int]:
    out: set[int] = set()
    names = _dependency_names(route)
    role = any(n.startswith("require_") for n in names)
    if role:
        out |= {401, 403, 429}
        if route.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            out.add(409)
    if route.path_format.startswith("/api/v1/predict"):
        out |= {401, 429}  # the optional key
    if route.path_format not in _EXEMPT:
        out.add(429)  # the per-client cap on requests in flight
    if operation.get("parameters") or "requestBody" in operation:
        out.add(422)
    if "requestBody" in operation:
        out |= {408, 413, 415}
        if route.path_format.endswith("/upload"):
            out.add(400)
    if "{" in route.path_format:
        out.add(404)
    if route.path_format not in _EXEMPT:
        out.add(503)
    return out


def document_errors(app: FastAPI, extra: dict[tuple[str, str], set[int]] | None = None) -> None:
    """Replace ``app.openapi`` by one that documents every error status (see the module docstring).
    ``extra`` adds statuses by (method, path), e.g. a 200 beside a route's 201."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = ERROR_BODY_SCHEMA
        ref = {"$ref": "#/components/schemas/ErrorBody"}
        for route in iter_route_contexts(app.routes):  # included routers are resolved lazily by FastAPI
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                statuses = _statuses(route, operation) | (extra or {}).get((method, str(route.path_format)), set())
                for status in sorted(statuses):
                    if status < 400:
                        responses.setdefault(str(status), {"description": "success",
                                                           "content": {"application/json": {"schema": {}}}})
                        continue
                    entry = responses.get(str(status), {})
                    responses[str(status)] = {"description": entry.get("description") or _REASONS.get(status, "error"),
                                              "content": {"application/json": {"schema": ref}}}
                for status, entry in responses.items():  # statuses routes declared themselves
                    if status.isdigit() and int(status) >= 400:
                        entry["content"] = {"application/json": {"schema": ref}}
                names = _dependency_names(route)
                if any(n.startswith("require_") for n in names):
                    operation["security"] = [{_SCHEME: []}]
                elif str(route.path_format).startswith("/api/v1/predict"):
                    operation["security"] = [{}, {_SCHEME: []}]  # a key is optional
                else:
                    operation["security"] = []
        schema["components"]["securitySchemes"] = {_SCHEME: {
            "type": "http", "scheme": "bearer", "description": "an API key (pk_...) or the admin token"}}
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
