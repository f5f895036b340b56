"""The domain exceptions of prognos, mapped once at each edge (CLI exit code, HTTP status, gRPC code).

::

    PrognosError                 base; never raised directly
    ├── ConfigError              bad settings / options                    CLI 2  HTTP 500  INTERNAL
    ├── DataFormatError          unreadable or malformed input file        CLI 3  HTTP 422  INVALID_ARGUMENT
    ├── ValidationError          a reading / request breaks the contract   CLI 3  HTTP 422  INVALID_ARGUMENT
    ├── BundleError              missing, incomplete or tampered bundle    CLI 4  HTTP 409  FAILED_PRECONDITION
    ├── NotFoundError            an engine / alert / version does not exist CLI 5 HTTP 404  NOT_FOUND
    ├── ConflictError            a resend that contradicts stored data     CLI 6  HTTP 409  ALREADY_EXISTS
    ├── ModelUnavailableError    no model is loaded                        CLI 4  HTTP 503  UNAVAILABLE
    └── OverloadedError          queue full / memory threshold reached     CLI 7  HTTP 503  RESOURCE_EXHAUSTED
        └── RateLimitedError     an API key exceeded its request rate      CLI 7  HTTP 429  RESOURCE_EXHAUSTED

Every message is one line meant for a person: it names the file, line, field or value at fault.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "ConfigError",
    "ConflictError",
    "DataFormatError",
    "ModelUnavailableError",
    "NotFoundError",
    "OverloadedError",
    "PrognosError",
    "RateLimitedError",
    "ValidationError",
]


class PrognosError(Exception):
    """Base of every error prognos raises on purpose."""

    exit_code: int = 1
    http_status: int = 500
    grpc_code: str = "INTERNAL"


class ConfigError(PrognosError):
    exit_code = 2


class DataFormatError(PrognosError):
    exit_code = 3
    http_status = 422
    grpc_code = "INVALID_ARGUMENT"


class ValidationError(PrognosError):
    exit_code = 3
    http_status = 422
    grpc_code = "INVALID_ARGUMENT"


class BundleError(PrognosError):
    exit_code = 4
    http_status = 409
    grpc_code = "FAILED_PRECONDITION"


class NotFoundError(PrognosError):
    exit_code = 5
    http_status = 404
    grpc_code = "NOT_FOUND"


class ConflictError(PrognosError):
    exit_code = 6
    http_status = 409
    grpc_code = "ALREADY_EXISTS"


class ModelUnavailableError(PrognosError):
    exit_code = 4
    http_status = 503
    grpc_code = "UNAVAILABLE"


class OverloadedError(PrognosError):
    exit_code = 7
    http_status = 503
    grpc_code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimitedError(OverloadedError):
    """Too many requests from one API key; ``retry_after_s`` says when the next one is allowed."""

    http_status = 429
