"""The lifecycle modules' public names, and that the serving path's part of them needs no torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "prognos.lifecycle.stores": {"ArtifactStore", "Blob", "LocalStore", "MemoryStore", "S3Store", "StaleWriteError",
                                 "StoreError", "open_store"},
    "prognos.lifecycle.registry": {"ALIASES", "AliasMove", "ModelVersion", "NotApprovedError", "Registration",
                                   "Registry", "RegistryEvent", "RegistryIndex", "open_registry", "resolve_alias"},
    "prognos.lifecycle.watcher": {"AliasSource", "AliasTarget", "FollowedModel", "RegistryWatcher", "follow_model"},
    "prognos.lifecycle.tracking": {"MlflowAliases", "MlflowModelVersion", "MlflowTracker", "TrackedRun",
                                   "resolve_model_uri", "tracker_for"},
    "prognos.lifecycle.tuning": {"TrialReport", "TuneResult", "suggest_config", "tune_study", "write_best_config"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_exactly_the_intended_ones(module: str) -> None:
    if module.endswith("tuning"):
        pytest.importorskip("optuna")
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_serving_by_alias_imports_no_torch() -> None:
    code = ("import sys; import prognos.lifecycle.watcher, prognos.lifecycle.registry, prognos.lifecycle.tracking; "
            "print('torch' in sys.modules, 'mlflow' in sys.modules, 'optuna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]  # mlflow only when a models:/ URI is served
