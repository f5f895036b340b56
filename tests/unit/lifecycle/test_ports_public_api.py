"""The seams' public names are the intended ones."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "prognos.lifecycle.ports": {"FailureRecord", "FakeFleet", "FakeGroundTruth", "FleetPort", "GroundTruth",
                                "ModelAlert", "RealisedPrediction", "ShadowOutcome", "ShadowPair", "StoredFailure"},
    "prognos.lifecycle.feedback": {"DEFAULT_RUL_CAP", "ErrorStats", "FailureRecord", "FailureResult",
                                   "PerformanceReport", "ShadowPair", "ShadowPerformance", "VersionPerformance",
                                   "model_performance", "prune_shadow", "record_failure", "save_shadow"},
    "prognos.lifecycle.monitoring": {"DriftMonitor", "FailureRequest", "Monitoring", "MonitoringCollector",
                                     "build_router", "lifecycle_hooks"},
    "prognos.serving.ports": {"FakePredictions", "Predictions"},
    "prognos.serving.hooks": {"ServerHooks"},
    "prognos.fleet.store": {"ENGINE_SORTS", "SEVERITY_RANK", "FleetStore"},
    "prognos.fleet.alerts": {"ACTIVE_ALERT", "ALERT_KINDS", "QUIET_EVENTS", "SEVERITY_RANK", "ActiveAlert",
                             "AlertRules", "Debounce", "RulPolicy", "Transition", "acknowledged", "transition"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"


def test_the_service_and_the_fake_implement_the_prediction_seam(tiny_bundle) -> None:  # type: ignore[no-untyped-def]
    from prognos.config import get_settings
    from prognos.data.validation import ReadingSpec
    from prognos.serving.ports import FakePredictions, Predictions
    from prognos.serving.service import PredictionService, load_predictor

    settings = get_settings()
    assert isinstance(PredictionService(settings, load_predictor(tiny_bundle, settings)), Predictions)
    assert isinstance(FakePredictions(ReadingSpec((), {}, 10), lambda s: 1.0), Predictions)
