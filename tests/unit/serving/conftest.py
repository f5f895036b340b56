from __future__ import annotations

from pathlib import Path

import pytest

from prognos.config import Settings, get_settings
from prognos.serving.predictor import Predictor
from prognos.serving.service import load_predictor


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env
    return get_settings(admin_token="s3cret", log_sample_rate=1.0)


@pytest.fixture(scope="session")
def predictor(tiny_bundle: Path) -> Predictor:
    return load_predictor(tiny_bundle, get_settings())
