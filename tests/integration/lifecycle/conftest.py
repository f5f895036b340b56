from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fd001_bundle(cmapss: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small FD001 model (a narrow 2-member TCN, 2 epochs, the teacher served: ~40 s of CPU): its
    reference profile is what the drift tests judge by; its predictions only need to be roughly right."""
    pytest.importorskip("torch")
    from prognos.data.cmapss import load_subset
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    subset = load_subset(cmapss, "FD001", with_test=False)
    cfg = TrainConfig(model="tcn", model_params={"tcn": {"channels": 16, "blocks": 3}}, folds=2, epochs=2,
                      patience=2, batch_size=1024, holdout=0.0, threads=2, seed=0, serve="ensemble")
    out = tmp_path_factory.mktemp("fd001") / "bundle"
    train_bundle_from_readings(subset.train, "FD001", out, cfg, has_test_truth=True, log=lambda m: None)
    return out
