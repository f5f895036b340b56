"""The serving modules export exactly their intended names (and each exported name exists)."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "prognos.serving.batcher": {"BATCH_SIZE_BUCKETS", "BatchStats", "MicroBatcher", "WindowRunner"},
    "prognos.serving.cache": {"CacheStats", "PredictionCache", "window_key"},
    "prognos.serving.logs": {"RequestLogger", "configure_logging", "get_logger"},
    "prognos.serving.remote": {"RemotePredictor", "RoutedPrediction"},
    "prognos.serving.sagemaker": {"create_sagemaker_app", "parse_csv"},
    "prognos.serving.http": {"create_app"},
    "prognos.serving.http.auth": {"Authenticator", "Principal", "Role", "TokenAuthenticator", "bearer_token",
                                  "optional_key", "require"},
    "prognos.serving.access": {"Access", "Authenticator", "Decision", "Principal", "RateLimiter", "Role",
                               "TokenAuthenticator", "parse_bearer", "rate_limited"},
    "prognos.serving.http.responses": {"JsonResponse"},
    "prognos.serving.http.routing": {"BodyRefused", "PrognosRequest", "PrognosRoute"},
    "prognos.server": {"ServerHooks", "run", "serve"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is exported but missing"


def test_the_serving_path_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, prognos.server, prognos.serving.sagemaker, prognos.serving.remote; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
