from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from prognos.lifecycle.registry import Registry
from prognos.lifecycle.stores import ArtifactStore

from .support import BACKENDS, open_backend, variant_bundle


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    with open_backend(request.param, tmp_path) as s:
        yield s


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
