from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from prognos.lifecycle.registry import Registry
from prognos.lifecycle.stores import ArtifactStore

from .support import BACKENDS, moto_s3, open_backend, variant_bundle


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    # One moto mock per module (starting one costs ~0.7 s); every test gets its own bucket.
    with moto_s3() as client:
        yield client


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    client = request.getfixturevalue("s3_client") if request.param == "s3" else None
    return open_backend(request.param, tmp_path, client)


@pytest.fixture
def registry(store: ArtifactStore, tmp_path: Path) -> Registry:
    return Registry(store, tmp_path / "cache")


@pytest.fixture(scope="session")
def make_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``make_bundle("v2")``: a distinct valid bundle (cached per name for the session)."""
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            made[name] = variant_bundle(tiny_bundle, tmp_path_factory.mktemp("variants") / name, f"synth-{name}")
        return made[name]

    return make
