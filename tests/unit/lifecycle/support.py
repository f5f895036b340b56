"""Helpers for the lifecycle tests: distinct valid bundles and the store backends to run over."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prognos.bundle import read_bundle, write_bundle
from prognos.lifecycle.stores import ArtifactStore, LocalStore, MemoryStore, S3Store

BACKENDS = ["local", "s3", "memory"]


def variant_bundle(source: Path, out: Path, version: str) -> Path:
    """A valid bundle with the same model as ``source`` but its own version (so its own manifest digest)."""
    b = read_bundle(source)
    m = b.manifest
    write_bundle(out, onnx_path=b.model_path, pipeline=b.pipeline, calibration=b.calibration, version=version,
                 dataset=m.dataset, model=m.model, validation_metrics=m.validation_metrics,
                 training_seconds=m.training_seconds, train_config=m.train_config)
    return out


class SerialClient:
    """A boto3 client proxy that makes each call atomic. moto's in-process S3 is not thread-safe
    (a concurrent overwrite can close an object another request is still reading); real S3 handles
    each request atomically, which is exactly what this restores — races *between* requests, the
    ones the registry's conditional writes must handle, still happen."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.exceptions = client.exceptions

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call


@contextmanager
def moto_s3() -> Iterator[Any]:
    """A boto3 S3 client inside moto's in-process mock (no AWS account, no network)."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield SerialClient(boto3.client("s3", region_name="us-east-1"))


def new_s3_store(client: Any) -> S3Store:
    """An empty S3 store in a bucket of its own (so one mock serves many tests)."""
    bucket = f"prognos-registry-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Store(bucket, "teams/rul/registry", client)


def open_backend(kind: str, root: Path, s3_client: Any = None) -> ArtifactStore:
    """A fresh, empty store of the given kind; ``s3`` needs a client from :func:`moto_s3`."""
    if kind == "local":
        return LocalStore(root / "registry")
    if kind == "memory":
        return MemoryStore()
    if kind == "s3":
        return new_s3_store(s3_client)
    raise ValueError(kind)
