"""Shared fixtures. ``tiny_bundle`` is a real bundle trained in seconds on a synthetic fleet, so
every serving/fleet test runs without the C-MAPSS files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prognos.config import default_cmapss_dir


def cmapss_dir() -> Path | None:
    env = os.environ.get("PROGNOS_CMAPSS_DIR")
    if env:
        return Path(env) if (Path(env) / "train_FD001.txt").exists() else None
    return default_cmapss_dir()


@pytest.fixture(scope="session")
def cmapss() -> Path:
    path = cmapss_dir()
    if path is None:
        pytest.skip("C-MAPSS data not found: set PROGNOS_CMAPSS_DIR or place it at ../shared/data/cmapss")
    return path


@pytest.fixture(scope="session")
def synthetic_readings():
    from prognos.data.synthetic import synthetic_fleet

    return synthetic_fleet(24, seed=1)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_readings) -> Path:
    """A trained, exported, verified bundle (2-member CNN ensemble, a few epochs, synthetic data)."""
    pytest.importorskip("torch")
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    cfg = TrainConfig(model="tcn", folds=2, epochs=4, patience=4, window=20, holdout=0.0, threads=1)
    train_bundle_from_readings(synthetic_readings, "SYNTH", out, cfg, log=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny_bundle_copy_factory(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """Make a private copy of the tiny bundle (for tests that tamper with files)."""
    import shutil

    def make(name: str = "copy") -> Path:
        dst = tmp_path_factory.mktemp("bundle-copy") / name
        shutil.copytree(tiny_bundle, dst)
        return dst

    return make
