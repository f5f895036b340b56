"""Artifact stores: where the model registry keeps its index and bundle files.

A store is a flat key → bytes space (keys use ``/``) with one extra: a *conditional* write, so
that several processes or machines can update the registry index without losing each other's
changes (optimistic concurrency: read with a tag, write back only if the tag still matches).

::

    ArtifactStore (Protocol)
    ├── LocalStore(dir)                 a directory; atomic writes (temp file + rename),
    │                                   conditional writes serialised by an ``flock`` lock file
    ├── S3Store(bucket, prefix, client) boto3; conditional writes are S3's own
    │                                   ``If-Match`` / ``If-None-Match`` (HTTP 412 on a race)
    └── MemoryStore()                   a dict, for fast tests

:func:`open_store` builds one from a path or an ``s3://bucket/prefix`` URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prognos.errors import ConfigError, ConflictError, NotFoundError, PrognosError

__all__ = [
    "ArtifactStore",
    "Blob",
    "LocalStore",
    "MemoryStore",
    "S3Store",
    "StaleWriteError",
    "StoreError",
    "open_store",
]


class StaleWriteError(ConflictError):
    """A conditional write lost a race: the object changed since it was read."""


class StoreError(PrognosError):
    """The store cannot be used: no such bucket or directory, no access, no credentials, unreachable."""


@dataclass(frozen=True)
class Blob:
    """An object's content and its tag (an opaque version token for conditional writes)."""

    data: bytes
    tag: str


@runtime_checkable
class ArtifactStore(Protocol):
    """A key → bytes store with conditional writes. Keys are relative, ``/``-separated."""

    @property
    def url(self) -> str:
        """Where the store lives, for messages (a path or ``s3://bucket/prefix``)."""
        ...

    def read(self, key: str) -> Blob | None:
        """The object and its tag, or ``None`` if there is none."""
        ...

    def write(self, key: str, data: bytes, *, expect: str | None = None, create: bool = False) -> str:
        """Store ``data``; return the new tag.

        ``expect=TAG`` writes only if the object's tag is still ``TAG``; ``create=True`` writes only
        if the object does not exist. Either failing raises :class:`StaleWriteError`.
        """
        ...

    def upload(self, key: str, path: Path) -> None:
        """Copy a local file into the store (unconditional)."""
        ...

    def download(self, key: str, path: Path) -> None:
        """Copy an object to a local file; :class:`NotFoundError` if it does not exist."""
        ...

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted."""
        ...


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> str:
    # Keys come from the registry, never from users, but a ".." would escape a LocalStore.
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid store key {key!r}")
    return key


class LocalStore:
    """A directory. Tags are SHA-256 digests of the content."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # One lock for the whole store: conditional writes are rare (index updates) and short.
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(self.root / ".lock", "a+b")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot use it as a registry ({exc.strerror or exc})") from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def read(self, key: str) -> Blob | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return Blob(data, _digest(data))

    def _replace(self, path: Path, data: bytes) -> None:
        # Readers see the old or the new file, never a half-written one.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        except OSError as exc:  # read-only, no permission, a file where a directory should be
            raise StoreError(f"{path.parent}: cannot write the registry there ({exc.strerror or exc})") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def write(self, key: str, data: bytes, *, expect: str | None = None, create: bool = False) -> str:
        path = self._path(key)
        if expect is None and not create:
            self._replace(path, data)
            return _digest(data)
        with self._locked():
            current = self.read(key)
            if create and current is not None:
                raise StaleWriteError(f"{self.url}/{key}: already exists")
            if expect is not None and (current is None or current.tag != expect):
                raise StaleWriteError(f"{self.url}/{key}: changed since it was read")
            self._replace(path, data)
        return _digest(data)

    def upload(self, key: str, path: Path) -> None:
        self._replace(self._path(key), Path(path).read_bytes())

    def download(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFoundError(f"{self.url}/{key}: no such object")
        Path(path).write_bytes(src.read_bytes())

    def list_keys(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for p in self.root.rglob("*"):
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and not any(part.startswith(".") for part in rel.split("/")) and rel.startswith(prefix):
                found.append(rel)
        return sorted(found)


class MemoryStore:
    """A dict behind a lock: the fake for tests that need no disk or network."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return "memory://"

    def read(self, key: str) -> Blob | None:
        with self._lock:
            data = self._objects.get(_check_key(key))
        return None if data is None else Blob(data, _digest(data))

    def write(self, key: str, data: bytes, *, expect: str | None = None, create: bool = False) -> str:
        with self._lock:
            current = self._objects.get(_check_key(key))
            if create and current is not None:
                raise StaleWriteError(f"memory://{key}: already exists")
            if expect is not None and (current is None or _digest(current) != expect):
                raise StaleWriteError(f"memory://{key}: changed since it was read")
            self._objects[key] = bytes(data)
        return _digest(data)

    def upload(self, key: str, path: Path) -> None:
        self.write(key, Path(path).read_bytes())

    def download(self, key: str, path: Path) -> None:
        blob = self.read(key)
        if blob is None:
            raise NotFoundError(f"memory://{key}: no such object")
        Path(path).write_bytes(blob.data)

    def list_keys(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(k for k in self._objects if k.startswith(prefix))


class S3Store:
    """An S3 bucket (or any S3-compatible service) under a key prefix. Tags are S3 ETags.

    The index update is race-free through S3 conditional writes (``If-Match`` / ``If-None-Match``,
    answered with HTTP 412 when another writer got there first), so no lock service is needed.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            try:
                import boto3
            except ImportError:
                raise ConfigError("an s3:// registry needs boto3 (pip install 'prognos[aws]')") from None
            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    @contextlib.contextmanager
    def _errors(self, key: str = "") -> Iterator[None]:
        """boto3's exceptions (no bucket, no credentials, unreachable endpoint…) as one-line StoreErrors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            where = f"{self.url}/{key}" if key else self.url
            raise StoreError(f"{where}: {err.get('Code', '?')}: {err.get('Message', exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"{self.url}: {exc}") from None

    def read(self, key: str) -> Blob | None:
        with self._errors(key):
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except self.client.exceptions.NoSuchKey:
                return None
            return Blob(obj["Body"].read(), obj["ETag"])

    def write(self, key: str, data: bytes, *, expect: str | None = None, create: bool = False) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if create:
            args["IfNoneMatch"] = "*"
        if expect is not None:
            args["IfMatch"] = expect
        with self._errors(key):
            try:
                return str(self.client.put_object(**args)["ETag"])
            except Exception as exc:
                # 412: the condition failed; 409 ConditionalRequestConflict: a concurrent conditional
                # write; NoSuchKey: If-Match on an object that was deleted meanwhile.
                code = self._code(exc)
                if code in ("PreconditionFailed", "ConditionalRequestConflict") or (expect and code == "NoSuchKey"):
                    raise StaleWriteError(f"{self.url}/{key}: changed since it was read") from None
                raise

    def upload(self, key: str, path: Path) -> None:
        with self._errors(key):
            try:
                self.client.upload_file(str(path), self.bucket, self._key(key))
            except Exception as exc:  # s3transfer wraps the ClientError; unwrap it for _errors
                cause = exc.__cause__ or exc.__context__
                if type(exc).__name__ == "S3UploadFailedError" and cause is not None:
                    raise cause from None
                raise

    def download(self, key: str, path: Path) -> None:
        with self._errors(key):
            try:
                self.client.download_file(self.bucket, self._key(key), str(path))
            except Exception as exc:
                if self._code(exc) in ("404", "NoSuchKey"):
                    raise NotFoundError(f"{self.url}/{key}: no such object") from None
                raise

    def list_keys(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        found: list[str] = []
        with self._errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + prefix)
            for page in pages:
                found.extend(obj["Key"][len(base) :] for obj in page.get("Contents", []))
        return sorted(found)


def open_store(location: str | Path, *, s3_client: Any = None) -> ArtifactStore:
    """A store for a local path or an ``s3://bucket/prefix`` URL (``s3_client``: a boto3 S3 client;
    default: one built from the usual AWS environment/config)."""
    text = str(location)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"registry URL {text!r}: no bucket name (expected s3://bucket/prefix)")
        return S3Store(bucket, prefix, s3_client)
    if "://" in text:
        raise ConfigError(f"registry location {text!r}: expected a directory or s3://bucket/prefix")
    return LocalStore(Path(text).expanduser())
