from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from prognos.config import Settings, get_settings
from prognos.errors import BundleError, ModelUnavailableError, OverloadedError, ValidationError
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService
from tests.unit.serving.factory import readings, rebundle, tamper


def test_prediction_matches_the_predictor_and_carries_the_response_fields(
        settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 30)
    served = asyncio.run(PredictionService(settings, predictor).predict("e-1", rows))
    direct = predictor.predict_sequences(["e-1"], [predictor.validate(rows)])[0]
    d = served.to_dict()
    assert d["predicted_rul"] == pytest.approx(direct.rul, abs=1e-3)
    assert (d["lower"], d["upper"]) == (pytest.approx(direct.lower, abs=1e-3), pytest.approx(direct.upper, abs=1e-3))
    assert d["engine_id"] == "e-1" and d["last_cycle"] == rows[-1]["cycle"]
    assert d["model_version"] == predictor.version and d["confidence_level"] == predictor.confidence
    assert d["status"] in ("healthy", "warning", "critical") and d["timestamp"].endswith("Z")


def test_status_follows_the_configured_thresholds(predictor: Predictor, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 30)
    # the status judges the interval's lower bound (prognos.status), not the point RUL
    lower = asyncio.run(PredictionService(get_settings(), predictor).predict("e", rows)).prediction.lower
    above = get_settings(warning_rul=lower + 2, critical_rul=lower + 1)
    between = get_settings(warning_rul=lower + 1, critical_rul=max(0.0, lower - 1))
    assert asyncio.run(PredictionService(above, predictor).predict("e", rows)).status == "critical"
    assert asyncio.run(PredictionService(between, predictor).predict("e", rows)).status == "warning"


def test_identical_window_hits_the_cache_and_other_history_misses(
        settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    service = PredictionService(settings, predictor)
    rows = readings(tiny_bundle, 30)
    changed_history = [dict(r) for r in rows]
    changed_history[0]["s2"] += 0.5  # same newest reading, different first one

    async def scenario() -> None:
        first = await service.predict("e", rows)
        again = await service.predict("e", [dict(r) for r in rows])
        assert again.prediction.rul == first.prediction.rul
        assert (service.cache.hits, service.batcher.stats.windows) == (1, 1)  # no second model call
        await service.predict("e", changed_history)
        assert (service.cache.hits, service.cache.misses, service.batcher.stats.windows) == (1, 2, 2)

    asyncio.run(scenario())


def test_batch_is_one_model_call_and_keeps_order(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    service = PredictionService(settings, predictor)
    items = [(f"e{i}", readings(tiny_bundle, 10 + i, engine=i % 6)) for i in range(12)]
    out = asyncio.run(service.predict_many(items))
    assert [s.prediction.engine_id for s in out] == [f"e{i}" for i in range(12)]
    assert service.batcher.stats.batches == 1 and service.batcher.stats.windows == 12
    singles = [asyncio.run(PredictionService(settings, predictor).predict(e, r)).prediction.rul for e, r in items]
    assert np.allclose([s.prediction.rul for s in out], singles, atol=1e-3)


def test_batch_errors_name_the_request_and_reading(settings: Settings, predictor: Predictor,
                                                    tiny_bundle: Path) -> None:
    bad = readings(tiny_bundle, 5)
    bad[2] = {**bad[2], "s4": float("inf")}
    with pytest.raises(ValidationError, match=r"^requests\[1\]\.sensor_data\[2\]\.s4: inf is not a finite number"):
        asyncio.run(PredictionService(settings, predictor).predict_many(
            [("a", readings(tiny_bundle, 5)), ("b", bad)]))


def test_without_a_model_the_service_is_unavailable(settings: Settings) -> None:
    service = PredictionService(settings)
    assert not service.ready and service.model_version is None
    with pytest.raises(ModelUnavailableError):
        asyncio.run(service.predict("e", [{"s2": 1.0}]))


def test_memory_threshold_refuses_with_overload(predictor: Predictor, tiny_bundle: Path) -> None:
    service = PredictionService(get_settings(max_memory_mb=1), predictor)  # any process is above 1 MB
    with pytest.raises(OverloadedError, match="memory"):
        asyncio.run(service.predict("e", readings(tiny_bundle, 5)))
    assert service.counters.overloaded == 1


def test_reload_swaps_the_model_and_refuses_a_tampered_bundle(
        settings: Settings, tiny_bundle: Path, tmp_path: Path, tiny_bundle_copy_factory) -> None:  # type: ignore[no-untyped-def]
    v2 = rebundle(tiny_bundle, tmp_path / "v2", "v2-test")
    bad = tamper(tiny_bundle_copy_factory("tampered"))
    service = PredictionService(settings)
    rows = readings(tiny_bundle, 20)

    async def scenario() -> None:
        await service.reload(tiny_bundle)
        assert service.ready
        first = service.model_version
        assert (await service.predict("e", rows)).prediction.model_version == first
        await service.reload(v2)
        assert service.model_version == "v2-test" and service.bundle_path == v2
        assert (await service.predict("e", rows)).prediction.model_version == "v2-test"  # not a stale cache hit
        with pytest.raises(BundleError, match="SHA-256"):
            await service.reload(bad)
        assert service.model_version == "v2-test" and service.ready
        assert (await service.predict("e", rows)).prediction.model_version == "v2-test"
        assert (service.counters.reloads, service.counters.reload_failures) == (2, 1)

    asyncio.run(scenario())


def test_reload_refuses_a_model_that_cannot_run_on_its_inputs(
        settings: Settings, tiny_bundle: Path, tmp_path: Path) -> None:
    import json

    from prognos.bundle import read_bundle, write_bundle
    from prognos.features.pipeline import FeaturePipeline

    src = read_bundle(tiny_bundle)
    # Preprocessing that yields one feature fewer than the network takes; every checksum is valid.
    d = src.pipeline.to_dict()
    n = len(d["sensors"])
    d["sensors"] = d["sensors"][:-1]
    d["mean"] = np.asarray(d["mean"]).reshape(-1, n)[:, :-1].tolist()
    d["scale"] = np.asarray(d["scale"]).reshape(-1, n)[:, :-1].tolist()
    pipeline = FeaturePipeline.from_json(json.dumps(d))
    m = src.manifest
    broken = write_bundle(tmp_path / "incompatible", onnx_path=src.model_path, pipeline=pipeline,
                          calibration=src.calibration, dataset=m.dataset, model=m.model,
                          validation_metrics=m.validation_metrics, training_seconds=m.training_seconds,
                          version="broken")
    service = PredictionService(settings)

    async def scenario() -> None:
        await service.reload(tiny_bundle)
        with pytest.raises(BundleError, match="does not run on its own inputs"):
            await service.reload(broken.path)
        assert service.model_version == src.version and service.ready

    asyncio.run(scenario())


def test_hot_swap_under_concurrent_load_fails_no_request(
        settings: Settings, tiny_bundle: Path, tmp_path: Path) -> None:
    v2 = rebundle(tiny_bundle, tmp_path / "v2", "v2-swap")
    service = PredictionService(settings)
    versions: list[str] = []

    async def client(k: int, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            rows = readings(tiny_bundle, 10 + (i % 20), engine=k % 6)  # varied windows: no pure cache run
            versions.append((await service.predict(f"e{k}", rows)).prediction.model_version)
            i += 1

    async def scenario() -> None:
        await service.reload(tiny_bundle)
        old = service.model_version
        stop = asyncio.Event()
        clients = [asyncio.create_task(client(k, stop)) for k in range(6)]
        while len(versions) < 30:
            await asyncio.sleep(0.005)
        await service.reload(v2)
        n_at_swap = len(versions)
        while len(versions) < n_at_swap + 30:
            await asyncio.sleep(0.005)
        stop.set()
        await asyncio.gather(*clients)  # any failed request raises here
        assert versions[0] == old and versions[-1] == "v2-swap"
        assert set(versions) == {old, "v2-swap"}

    asyncio.run(scenario())
