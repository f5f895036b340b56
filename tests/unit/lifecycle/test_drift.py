"""Drift statistics and verdicts on synthetic data with a known shift, the reference profile in
bundles, the request capture (sampling, ring buffer, bounded JSONL) and the HTML/JSON report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from prognos.bundle import read_bundle, write_bundle
from prognos.errors import BundleError
from prognos.lifecycle.drift import (
    CaptureRecord,
    DriftCapture,
    DriftSample,
    DriftThresholds,
    compute_drift,
    ks_test,
    psi,
    read_capture,
    sample_from_readings,
    sample_from_records,
    write_report,
)
from prognos.reference import REFERENCE_FILE, Distribution, ReferenceProfile, load_reference

NAMES = [f"f{i}" for i in range(10)]
RAW = ["r0", "r1"]


def reference(seed: int = 0, n: int = 20000) -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    return ReferenceProfile.from_arrays(rng.normal(size=(n, 10)), NAMES, rng.normal(50, 5, size=(n, 2)), RAW,
                                        rng.uniform(0, 125, size=n))


def sample(n: int, shift: np.ndarray | float = 0.0, seed: int = 1, pred_shift: float = 0.0) -> DriftSample:
    rng = np.random.default_rng(seed)
    return DriftSample(NAMES, rng.normal(size=(n, 10)) + shift, RAW, rng.normal(50, 5, size=(n, 2)),
                       np.clip(rng.uniform(0, 125, size=n) + pred_shift, 0, 125))


def test_same_distribution_is_quiet_and_a_known_shift_is_flagged() -> None:
    ref, t = reference(), DriftThresholds()
    quiet = compute_drift(ref, sample(2000), t, "m1")
    assert quiet.status == "ok" and not quiet.detected and quiet.n_drifted == 0
    assert max(q.psi for q in quiet.features) < 0.05

    # 4 of 10 features shifted by one standard deviation: beyond the 30 % share -> drift
    shift = np.array([1.0] * 4 + [0.0] * 6)
    loud = compute_drift(ref, sample(2000, shift), t, "m1")
    assert loud.status == "drift" and loud.detected
    assert loud.drifted_features == NAMES[:4]
    assert all(q.psi > 0.25 and q.ks > 0.3 and q.ks_pvalue < 0.01 for q in loud.features[:4])
    assert "4 of 10 model features drifted" in loud.message

    # 2 of 10 shifted: those two are reported, the model as a whole is not flagged
    few = compute_drift(ref, sample(2000, np.array([1.0] * 2 + [0.0] * 8)), t, "m1")
    assert few.status == "ok" and few.drifted_features == NAMES[:2]


def test_a_small_shift_moves_psi_but_needs_a_ks_effect_too() -> None:
    # 0.35 sd: PSI passes 0.1 but the largest CDF gap (~0.14) stays under the effect threshold
    report = compute_drift(reference(), sample(5000, 0.35), DriftThresholds(), "m1")
    assert all(q.psi > 0.08 for q in report.features)
    assert all(q.ks < 0.3 for q in report.features) and report.status == "ok"


def test_prediction_drift_is_reported_beside_the_verdict() -> None:
    report = compute_drift(reference(), sample(2000, pred_shift=-60.0), DriftThresholds(), "m1")
    assert report.prediction is not None and report.prediction.drifted
    assert report.status == "ok"  # features decide; predictions explain


def test_too_few_samples_and_no_reference() -> None:
    t = DriftThresholds(min_samples=100)
    small = compute_drift(reference(), sample(50, 3.0), t, "m1")
    assert small.status == "insufficient" and not small.detected and "at least 100" in small.message
    assert small.n_drifted == 0  # a handful of requests never counts as drift
    none = compute_drift(None, sample(500), t, "old-model")
    assert none.status == "no_reference" and "no reference profile" in none.message and "old-model" in none.message


def test_ks_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    ref = Distribution.of(rng.normal(size=200_000))
    for shift, n in ((0.0, 300), (0.2, 300), (0.5, 80)):
        x = rng.normal(shift, 1.0, size=n)
        mine = ks_test(ref, x)
        theirs = stats.kstest(x, "norm", method="asymp")
        assert mine.statistic == pytest.approx(theirs.statistic, abs=0.01)
        assert mine.pvalue == pytest.approx(theirs.pvalue, abs=0.02, rel=0.25)


def test_psi_of_a_known_split() -> None:
    ref = Distribution.of(np.arange(1000.0))  # deciles: 10 % per bin
    assert psi(ref, np.arange(1000.0)) == pytest.approx(0.0, abs=1e-9)
    # everything in the lowest bin: sum over bins of (cur - ref) ln(cur / ref) with cur = 1 / eps-floor
    got = psi(ref, np.zeros(100))
    expected = (1 - 0.1) * np.log(1 / 0.1) + 9 * (1e-4 - 0.1) * np.log(1e-4 / 0.1)
    assert got == pytest.approx(expected, rel=1e-6)


def test_profile_json_round_trip_and_discrete_values() -> None:
    ref = reference(n=3000)
    again = ReferenceProfile.from_dict(json.loads(ref.to_json()))
    assert again == ref
    # a variable with a handful of values gets fewer, non-empty PSI bins, and PSI 0 against itself
    discrete = Distribution.of(np.repeat([1.0, 2.0, 3.0], 100))
    assert len(discrete.bin_shares) == len(discrete.bin_edges) + 1 <= 10
    assert min(discrete.bin_shares) > 0 and psi(discrete, np.repeat([1.0, 2.0, 3.0], 7)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unsupported reference profile format"):
        ReferenceProfile.from_dict({**ref.to_dict(), "format": "other/9"})


# --- the profile inside bundles -------------------------------------------------------------------


def test_trained_bundles_carry_a_verified_reference(tiny_bundle: Path, tiny_bundle_copy_factory) -> None:  # type: ignore[no-untyped-def]
    bundle = read_bundle(tiny_bundle)
    assert REFERENCE_FILE in bundle.manifest.files
    ref = load_reference(bundle)
    assert ref is not None
    assert list(ref.features) == bundle.manifest.feature_names
    assert list(ref.raw) == bundle.manifest.input_fields
    assert ref.prediction.n == bundle.manifest.validation_metrics["n_windows"]
    assert 0 <= ref.prediction.quantiles[0] <= ref.prediction.quantiles[-1] <= bundle.manifest.rul_cap + 1e-3

    copy = tiny_bundle_copy_factory("ref-tamper")
    data = json.loads((copy / REFERENCE_FILE).read_text())
    data["prediction"]["mean"] += 1.0
    (copy / REFERENCE_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"reference\.json does not match its SHA-256"):
        read_bundle(copy)


def test_old_bundles_have_no_reference(tiny_bundle: Path, tmp_path: Path) -> None:
    b = read_bundle(tiny_bundle)
    m = b.manifest
    old = write_bundle(tmp_path / "old", onnx_path=b.model_path, pipeline=b.pipeline, calibration=b.calibration,
                       dataset=m.dataset, model=m.model, validation_metrics=m.validation_metrics,
                       training_seconds=m.training_seconds)
    assert REFERENCE_FILE not in old.manifest.files and load_reference(old) is None
    with pytest.raises(BundleError, match="plain file name"):
        write_bundle(tmp_path / "bad", onnx_path=b.model_path, pipeline=b.pipeline, calibration=b.calibration,
                     dataset=m.dataset, model=m.model, validation_metrics={}, training_seconds=0.0,
                     extra_files={"../escape.json": "{}"})


# --- capture ---------------------------------------------------------------------------------------


def test_capture_observes_the_service_and_is_bounded(tiny_bundle: Path, tmp_path: Path) -> None:
    import asyncio

    from prognos.config import get_settings
    from prognos.serving.service import PredictionService, load_predictor
    from tests.unit.serving.factory import readings

    settings = get_settings(cache_size=0)
    predictor = load_predictor(tiny_bundle, settings)
    service = PredictionService(settings, predictor)
    capture = DriftCapture(1.0, buffer_size=25, directory=tmp_path / "drift", max_rows=30, seed=0)
    never = DriftCapture(0.0, buffer_size=25)
    service.observers += [capture.observe, never.observe]
    items = [(f"e{i}", readings(tiny_bundle, 40, engine=i % 6)) for i in range(40)]

    async def go():  # type: ignore[no-untyped-def]
        try:
            first = [a for i in range(0, 40, 10) for a in await service.predict_many(items[i:i + 10])]
            flushed = capture.flush()
            for i in range(0, 20, 10):
                await service.predict_many(items[i:i + 10])
            return first, flushed
        finally:
            await service.close()

    served, flushed = asyncio.run(go())
    assert capture.captured == 60 and never.captured == 0
    recs = capture.records()
    assert len(recs) == 25  # the ring buffer keeps the newest
    # a captured record is what the model saw: the last row of the window, and the answer given
    seq = predictor.validate(items[19][1])
    assert recs[-1].features == pytest.approx(predictor.window_of(seq)[-1].tolist(), abs=1e-5)
    assert recs[-1].prediction == pytest.approx(served[19].prediction.rul)
    assert recs[-1].model_version == predictor.version

    # flush writes the pending records (bounded by the buffer); past max_rows the file rotates,
    # so the disk holds at most 2 x max_rows records
    assert flushed == 25
    assert capture.flush() == 20
    assert capture.flush() == 0
    # one huge batch captures a bounded number inline, whatever the rate
    before = capture.captured
    capture.observe(predictor, [e for e, _ in items], [predictor.validate(r) for _, r in items], served)
    assert capture.captured - before == 16
    files = sorted(p.name for p in (tmp_path / "drift").iterdir())
    assert files == ["capture.1.jsonl", "capture.jsonl"]
    assert len((tmp_path / "drift" / "capture.jsonl").read_text().splitlines()) == 20
    all_recs = read_capture(tmp_path / "drift")
    assert len(all_recs) == 45
    later = read_capture(tmp_path / "drift", since=all_recs[-20].t)
    assert 20 <= len(later) < 45 and read_capture(tmp_path / "drift", model_version="other") == []


def test_capture_survives_a_torn_line(tmp_path: Path) -> None:
    rec = CaptureRecord(1.0, "m", [0.1], [2.0], 50.0)
    (tmp_path / "capture.jsonl").write_text(rec.to_json() + "\n" + rec.to_json()[:17] + "\n")
    assert read_capture(tmp_path) == [rec]


def test_an_observer_that_raises_does_not_fail_the_request(tiny_bundle: Path) -> None:
    import asyncio

    from prognos.config import get_settings
    from prognos.serving.service import PredictionService, load_predictor
    from tests.unit.serving.factory import readings

    settings = get_settings(cache_size=0)
    service = PredictionService(settings, load_predictor(tiny_bundle, settings))

    def broken(*_: object) -> None:
        raise RuntimeError("observer bug")

    service.observers.append(broken)

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await service.predict("e1", readings(tiny_bundle, 30))
        finally:
            await service.close()

    assert asyncio.run(go()).prediction.rul >= 0


# --- samples from files and the report -------------------------------------------------------------


def test_report_from_a_file_in_and_out_of_distribution(tiny_bundle: Path, tmp_path: Path) -> None:
    from prognos.data.synthetic import synthetic_fleet
    from prognos.serving.predictor import Predictor

    predictor = Predictor.from_path(tiny_bundle)
    ref = load_reference(predictor.bundle)
    assert ref is not None
    fleet = synthetic_fleet(12, seed=5)  # same generator as the training fleet, other engines
    same = sample_from_readings(predictor, fleet, source="synthetic")
    assert len(same) == len(fleet) and same.features.shape == (len(fleet), predictor.pipeline.n_features)
    ok = compute_drift(ref, same, DriftThresholds(), predictor.version)
    assert ok.status == "ok", ok.message

    # every sensor offset by 3 training standard deviations (a recalibrated instrument bank)
    shifted_values = fleet.values.copy()
    sd = np.array([ref.raw[f].std if f in ref.raw else 0.0 for f in _measurements()])
    shifted_values += 3 * sd
    from dataclasses import replace

    shifted = replace(fleet, values=shifted_values)
    sample_shift = sample_from_readings(predictor, shifted, max_rows=500, seed=1)
    assert len(sample_shift) == 500
    drift = compute_drift(ref, sample_shift, DriftThresholds(), predictor.version)
    assert drift.status == "drift" and drift.n_drifted == len(drift.features)
    assert all(q.drifted for q in drift.raw)

    files = write_report(drift, ref, sample_shift, tmp_path / "report")
    page = files.html.read_text()
    assert "DRIFT DETECTED" in page and predictor.version in page
    if files.plots:
        assert page.count("data:image/png;base64,") == 3
    body = json.loads(files.json.read_text())
    assert body["status"] == "drift" and body["drifted_features"] == drift.drifted_features


def test_records_become_a_sample_of_their_model_only(tiny_bundle: Path) -> None:
    from prognos.serving.predictor import Predictor

    predictor = Predictor.from_path(tiny_bundle)
    nf, nr = predictor.pipeline.n_features, len(predictor.pipeline.required_fields)
    recs = [CaptureRecord(float(i), predictor.version if i % 2 else "other", [float(i)] * nf, [1.0] * nr, 10.0)
            for i in range(10)]
    s = sample_from_records(predictor, recs)
    assert len(s) == 5 and s.features[:, 0].tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]


def _measurements() -> tuple[str, ...]:
    from prognos.data.schema import MEASUREMENT_FIELDS

    return MEASUREMENT_FIELDS


def test_a_copied_bundle_keeps_its_profile(tmp_path: Path, tiny_bundle: Path) -> None:
    dst = tmp_path / "copied"
    shutil.copytree(tiny_bundle, dst)
    assert load_reference(read_bundle(dst)) == load_reference(read_bundle(tiny_bundle))


def test_drift_report_cli_on_a_registry_alias(tiny_bundle: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from prognos.cli import app
    from prognos.data.synthetic import synthetic_fleet
    from prognos.lifecycle.registry import open_registry
    from tests.helpers import cmapss_text

    registry = open_registry(str(tmp_path / "registry"), tmp_path / "cache")
    registry.register(tiny_bundle)  # version 1, alias candidate
    data = tmp_path / "fleet.txt"
    data.write_text(cmapss_text(synthetic_fleet(12, seed=8)))
    env = {"PROGNOS_REGISTRY_DIR": str(tmp_path / "registry"), "PROGNOS_DATA_DIR": str(tmp_path / "data")}
    res = CliRunner().invoke(app, ["drift", "report", "--model", "candidate", "--input", str(data), "--out",
                                   str(tmp_path / "out")], env=env)
    assert res.exit_code == 0, res.output
    version = read_bundle(tiny_bundle).version
    assert f"model {version}: no drift" in res.output
    body = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert body["model_version"] == version and body["n_samples"] == len(synthetic_fleet(12, seed=8))


def test_public_names_and_a_light_serving_path() -> None:
    import importlib
    import subprocess
    import sys

    for name in ("drift", "feedback", "canary", "monitoring"):
        module = importlib.import_module(f"prognos.lifecycle.{name}")
        for public in module.__all__:
            assert hasattr(module, public), f"prognos.lifecycle.{name}.{public}"
    # what `prognos serve` loads for monitoring pulls in no training or plotting stack
    code = ("import sys, prognos.lifecycle.monitoring, prognos.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'scipy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
