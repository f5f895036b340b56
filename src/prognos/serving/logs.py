"""Structured request logs: one JSON line per logged request.

Fields: ``request_id``, ``route``, ``status``, ``latency_ms``, and when known ``engine_id``
(or ``engines`` for a batch) and ``model_version``. Successful requests are sampled at
``log_sample_rate``; every error is logged. Payloads are never logged — only identifiers and sizes.

:func:`configure_logging` is called once at process start (``prognos serve``); library code only
asks for a logger.
"""

from __future__ import annotations

import logging
import random
import sys
from typing import Any

import structlog

__all__ = ["RequestLogger", "configure_logging", "get_logger"]

LOGGER_NAME = "prognos.serving"


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Route structlog and stdlib logging (uvicorn, grpc) to stderr as JSON lines (or console text)."""
    lvl = logging.getLevelName(level.upper())
    if not isinstance(lvl, int):
        lvl = logging.INFO
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)
    # uvicorn's own access log would duplicate ours, unsampled.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str = LOGGER_NAME) -> Any:
    return structlog.get_logger(name)


class RequestLogger:
    """Logs finished requests: errors always, successes with probability ``sample_rate``."""

    def __init__(self, sample_rate: float, rng: random.Random | None = None, logger: Any = None) -> None:
        self.sample_rate = sample_rate
        self._rng = rng or random.Random()
        self._log = logger if logger is not None else get_logger()

    def request(self, *, request_id: str, route: str, status: int, latency_ms: float, error: str | None = None,
                **ids: Any) -> None:
        """``ids``: engine_id / engines / model_version — identifiers only, never readings."""
        fields = {k: v for k, v in ids.items() if v is not None}
        if error is not None or status >= 400:
            level = self._log.error if status >= 500 else self._log.warning
            level("request failed", request_id=request_id, route=route, status=status,
                  latency_ms=round(latency_ms, 3), error=error, **fields)
        elif self.sample_rate >= 1.0 or self._rng.random() < self.sample_rate:
            self._log.info("request", request_id=request_id, route=route, status=status,
                           latency_ms=round(latency_ms, 3), **fields)
