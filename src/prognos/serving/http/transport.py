"""How uvicorn runs the REST API: connection timeouts, header limits and optional HTTPS.

uvicorn closes a keep-alive connection idle for ``timeout_keep_alive`` seconds, but it has no
deadline for a request's own headers: its keep-alive timer only runs *between* requests and is
reset by every byte received, so a client that opens a connection and trickles (or never sends)
its headers holds a socket for as long as it likes (slowloris; uvicorn issue #157 and PR #1192
discuss the gap). :class:`HeaderDeadlineProtocol` adds that deadline: from the moment a connection
opens, and again after each response, the next request line and headers must arrive within
``http_header_timeout_s`` or the connection is closed. Requests whose headers arrived are never
cut (a slow upload body is bounded by its size limit, not by this clock). h11 refuses a request
line plus headers over :data:`MAX_HEADER_BYTES` with 400 while they are incomplete; the request
middleware refuses them with 431 when they arrived at once. ``X-Forwarded-For`` is believed only
from ``forwarded_allow_ips``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from prognos.config import Settings
from prognos.errors import ConfigError
from prognos.serving.http.middleware import MAX_HEADER_BYTES

__all__ = ["MAX_HEADER_BYTES", "HeaderDeadlineProtocol", "uvicorn_options"]



class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's line and headers (s)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _disarm(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # their_state stays IDLE until h11 has parsed a whole request line and headers.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` from ``settings`` (timeouts, limits, HTTPS)."""
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,),
                    {"header_timeout_s": settings.http_header_timeout_s})
    options: dict[str, Any] = {
        "http": protocol,
        "timeout_keep_alive": max(1, round(settings.http_keepalive_s)),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise, which let a local
        # client pick its own address (and anonymous rate-limit bucket) per request: only the
        # proxies the settings name are believed.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips) or None,
    }
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if (cert is None) != (key is None):
        raise ConfigError("tls_cert_file and tls_key_file (PROGNOS_TLS_CERT_FILE, PROGNOS_TLS_KEY_FILE): set both "
                          "or neither")
    if cert is not None and key is not None:
        for name, path in (("tls_cert_file", cert), ("tls_key_file", key)):
            if not path.is_file():
                raise ConfigError(f"{name} (PROGNOS_{name.upper()}): {path} is not a readable file")
        options.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
    return options
