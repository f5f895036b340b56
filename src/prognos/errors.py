"""The domain exceptions of prognos, mapped once at each edge (CLI exit code, HTTP status, gRPC code).

::

    PrognosError                    base; never raised directly          CLI 1  HTTP 500  INTERNAL
    ├── ConfigError                 bad settings / options / missing extra CLI 2  HTTP 500  INTERNAL
    ├── DataFormatError             unreadable or malformed input file    CLI 3  HTTP 422  INVALID_ARGUMENT
    ├── ValidationError             a reading / request breaks the contract (``kind`` says how)
    │   │                                                                 CLI 3  HTTP 422  INVALID_ARGUMENT
    │   ├── PayloadTooLargeError    a body or upload over its size limit  CLI 3  HTTP 413  INVALID_ARGUMENT
    │   └── UnsupportedMediaTypeError  a body that is not JSON (multipart) CLI 3  HTTP 415  INVALID_ARGUMENT
    ├── BundleError                 missing, incomplete or tampered bundle CLI 4  HTTP 409  FAILED_PRECONDITION
    ├── NotFoundError               an engine / alert / version does not exist
    │                                                                     CLI 5  HTTP 404  NOT_FOUND
    ├── ConflictError               a resend that contradicts stored data CLI 6  HTTP 409  ALREADY_EXISTS
    │   ├── NotApprovedError        (lifecycle.registry) promotion of an unapproved version
    │   │                                                                 CLI 6  HTTP 409  FAILED_PRECONDITION
    │   └── StaleWriteError         (lifecycle.stores) a conditional write lost a race
    ├── ModelUnavailableError       no model is loaded                    CLI 4  HTTP 503  UNAVAILABLE
    ├── OverloadedError             queue full / memory threshold reached CLI 7  HTTP 503  RESOURCE_EXHAUSTED
    │   └── RateLimitedError        a caller exceeded its request rate    CLI 7  HTTP 429  RESOURCE_EXHAUSTED
    ├── StorageUnavailableError     the database is down, read-only or the disk is full
    │                                                                     CLI 8  HTTP 503  UNAVAILABLE
    ├── StoreError                  (lifecycle.stores) a model store cannot be used (no bucket, no access)
    │                                                                     CLI 1  HTTP 500  INTERNAL
    ├── UnauthenticatedError        no, unknown or revoked credentials    CLI 2  HTTP 401  UNAUTHENTICATED
    ├── PermissionDeniedError       a key whose role is too weak          CLI 2  HTTP 403  PERMISSION_DENIED
    ├── TrainingError               training cannot produce a sound model  CLI 9  HTTP 500  INTERNAL
    │   └── NotFittedError          (features.pipeline) transform before fit CLI 9  HTTP 500  INTERNAL
    ├── RemoteError                 a server or child process answered in a way no class above describes
    │   │                                                                 CLI 10 HTTP 502  UNKNOWN
    │   └── SimulationError         (fleet.simulate) the simulated fleet's server refused or failed
    │                                                                     CLI 8  HTTP 502  UNKNOWN
    └── (nothing else: every class prognos raises on purpose is drawn here; tests/unit/test_errors.py
        checks the drawing against the code)

Every message is one line meant for a person: it names the file, line, field or value at fault.
Each front end maps these once: HTTP in :mod:`prognos.serving.http.errors`, gRPC in
:mod:`prognos.serving.grpc.server`, the CLI's exit code in ``prognos.cli``.
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
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PrognosError",
    "RateLimitedError",
    "RemoteError",
    "StorageUnavailableError",
    "TrainingError",
    "UnauthenticatedError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class PrognosError(Exception):
    """Base of every error prognos raises on purpose (never raised itself: raise a subclass)."""

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
    """``kind`` classifies the refusal without re-validating: ``invalid`` (a client bug: wrong
    type, unknown field, bad JSON), ``missing_sensor`` (a field the model needs is absent),
    ``out_of_range`` (a value outside the model's plausible range), ``too_large``, ``media_type``."""

    exit_code = 3
    http_status = 422
    grpc_code = "INVALID_ARGUMENT"

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


class PayloadTooLargeError(ValidationError):
    http_status = 413

    def __init__(self, message: str) -> None:
        super().__init__(message, "too_large")


class UnsupportedMediaTypeError(ValidationError):
    http_status = 415

    def __init__(self, message: str) -> None:
        super().__init__(message, "media_type")


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
    """Too many requests from one caller; ``retry_after_s`` says when the next one is allowed."""

    http_status = 429


class StorageUnavailableError(PrognosError):
    """Writes cannot be stored now (database down or read-only, disk full); nothing of the refused
    request was stored, so resending it after ``retry_after_s`` (s) is safe."""

    exit_code = 8
    http_status = 503
    grpc_code = "UNAVAILABLE"

    def __init__(self, message: str, retry_after_s: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnauthenticatedError(PrognosError):
    exit_code = 2
    http_status = 401
    grpc_code = "UNAUTHENTICATED"


class PermissionDeniedError(PrognosError):
    exit_code = 2
    http_status = 403
    grpc_code = "PERMISSION_DENIED"


class TrainingError(PrognosError):
    exit_code = 9


class RemoteError(PrognosError):
    exit_code = 10
    http_status = 502
    grpc_code = "UNKNOWN"
