"""Drift judged at the sample's own life stages, and no verdict before enough engines: generated
run-to-failure fleets whose sensors degrade with age, so a young fleet looks unlike the training
windows as a whole while being exactly like young training engines."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from prognos.lifecycle.drift import CaptureRecord, DriftSample, DriftThresholds, compute_drift
from prognos.reference import Distribution, LifeStages, MatchedDistribution, ReferenceProfile

NAMES = [f"f{i}" for i in range(6)]
RAW = ["r0"]


def fleet(n_engines: int, seed: int, max_cycle: int | None = None, mode: float = 1.0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (n, 6), cycles (n,), engine ids (n,)) of engines that live 150-300 cycles: healthy
    noise, then from 30 % of life a degradation growing to 6 sd at failure (``mode`` -1: the other way,
    a second fault mode). ``max_cycle`` cuts each engine there (a young fleet)."""
    rng = np.random.default_rng(seed)
    feats, cycles, ids = [], [], []
    for e in range(n_engines):
        life = int(rng.integers(150, 300))
        c = np.arange(1, life + 1)
        if max_cycle is not None:
            c = c[c <= max_cycle]
        wear = 6.0 * np.clip(c / life - 0.3, 0, None) ** 2 / 0.49
        offset = rng.normal(0, 0.3, size=6)  # engine-to-engine variation
        feats.append(rng.normal(size=(len(c), 6)) + offset + mode * wear[:, None])
        cycles.append(c)
        ids.append(np.full(len(c), f"e{seed}-{e}", dtype=object))
    return np.concatenate(feats), np.concatenate(cycles).astype(np.float64), np.concatenate(ids)


def profile(stages: bool = True) -> ReferenceProfile:
    f, c, _ = fleet(100, seed=0)
    pred = np.clip(200 - c, 0, 125)
    return ReferenceProfile.from_arrays(f, NAMES, f[:, :1], RAW, pred, cycles=c if stages else None,
                                        raw_cycles=c if stages else None)


def sample(f: np.ndarray, c: np.ndarray | None, ids: np.ndarray | None) -> DriftSample:
    pred = np.clip(200 - (c if c is not None else np.full(len(f), 100.0)), 0, 125)
    return DriftSample(NAMES, f, RAW, f[:, :1], pred, "generated", c, ids)


def test_a_young_fleet_is_judged_against_young_training_engines() -> None:
    ref, t = profile(), DriftThresholds()
    f, c, ids = fleet(40, seed=7, max_cycle=60)  # the demo's case: 40 engines, first 60 cycles
    young = compute_drift(ref, sample(f, c, ids), t, "m")
    assert young.status == "ok" and young.n_drifted == 0 and young.stratified, young.message
    assert max(q.ks for q in young.features) < 0.15
    # the cause of the false alarm: the same rows against all training windows look drifted
    blind = compute_drift(ref, sample(f, None, ids), t, "m")
    assert blind.status == "drift" and not blind.stratified, blind.message
    assert "all training windows" in blind.message
    # every stage the sample touches is reported, with its share and the training rows behind it
    assert ref.stages is not None
    assert {s.stage for s in young.stages} <= {ref.stages.label(i) for i in range(len(ref.stages))}
    assert sum(s.share for s in young.stages) == pytest.approx(1.0, abs=1e-3)
    assert young.stages[0].stage.startswith("cycles 1-") and all(s.reference_n > 0 for s in young.stages)


def test_stratified_drift_still_sees_a_shift_and_another_fault_mode() -> None:
    ref, t = profile(), DriftThresholds()
    f, c, ids = fleet(40, seed=8, max_cycle=60)
    shifted = compute_drift(ref, sample(f + 1.0, c, ids), t, "m")  # a recalibrated sensor bank
    assert shifted.status == "drift" and shifted.n_drifted == len(NAMES)
    assert all(s.n_drifted == len(NAMES) for s in shifted.stages if s.n_drifted is not None)
    f, c, ids = fleet(40, seed=9, mode=-1.0)  # whole lives, degrading the other way
    other = compute_drift(ref, sample(f, c, ids), t, "m")
    assert other.status == "drift", other.message
    late = [s for s in other.stages if s.n_drifted is not None][-1]
    assert late.n_drifted == len(NAMES) and late.max_ks is not None and late.max_ks > 0.5
    same = compute_drift(ref, sample(*fleet(40, seed=10)), t, "m")  # whole lives, the training fault mode
    assert same.status == "ok" and same.n_drifted == 0, same.message


def test_no_verdict_before_enough_engines() -> None:
    ref, t = profile(), DriftThresholds(min_samples=100, min_engines=10)
    f, c, ids = fleet(4, seed=11, max_cycle=100)  # 400 rows, but 4 engines
    few = compute_drift(ref, sample(f + 2.0, c, ids), t, "m")
    assert few.status == "insufficient" and few.n_engines == 4 and few.n_drifted == 0
    assert not any(q.drifted for q in [*few.features, *few.raw])
    assert "from 4 engines" in few.message and "from 10 engines" in few.message
    f, c, ids = fleet(12, seed=11, max_cycle=100)
    assert compute_drift(ref, sample(f + 2.0, c, ids), t, "m").status == "drift"
    # a sample that does not say which engine a row is from is judged on its rows alone
    assert compute_drift(ref, sample(f[:150] + 2.0, c[:150], None), t, "m").status == "drift"
    assert compute_drift(ref, sample(f[:99] + 2.0, c[:99], None), t, "m").status == "insufficient"


def test_unknown_cycles_count_against_the_overall_reference() -> None:
    ref = profile()
    f, c, ids = fleet(30, seed=12, max_cycle=80)
    c = c.copy()
    c[::2] = np.nan
    report = compute_drift(ref, sample(f, c, ids), DriftThresholds(), "m")
    unknown = [s for s in report.stages if s.stage.startswith("cycle unknown")]
    assert len(unknown) == 1 and unknown[0].n == int(np.isnan(c).sum())
    assert ref.stages is not None
    matched = ref.matched("feature", "f0", ref.stages.index(c))
    assert isinstance(matched, MatchedDistribution) and matched.weights[0] == pytest.approx(0.5, abs=0.01)


def test_a_matched_reference_is_the_stage_mixture() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 5000), rng.normal(3, 1, 5000)
    whole = Distribution.of(np.concatenate([a, b]))
    parts = (whole, Distribution.of(a, whole.bin_edges), Distribution.of(b, whole.bin_edges))
    mix = MatchedDistribution(parts, (0.0, 0.25, 0.75))
    x = np.array([-1.0, 0.0, 1.5, 3.0, 5.0])
    assert mix.cdf(x) == pytest.approx(0.25 * parts[1].cdf(x) + 0.75 * parts[2].cdf(x))
    assert sum(mix.bin_shares) == pytest.approx(1.0) and mix.bin_edges == whole.bin_edges
    assert mix.mean == pytest.approx(0.25 * a.mean() + 0.75 * b.mean(), abs=1e-6)
    assert mix.std == pytest.approx(np.concatenate([a, b, b, b]).std(), rel=0.01)


def test_life_stages_and_the_profile_format() -> None:
    stages = LifeStages.of(np.concatenate([np.arange(1, 201)] * 5).astype(float))
    assert len(stages) == 8 and stages.edges == sorted(stages.edges) and sum(stages.n) == 1000
    assert max(stages.n) - min(stages.n) <= 10  # about equal rows per stage
    assert stages.index(np.array([1.0, 10_000.0, np.nan])).tolist() == [0, 7, -1]
    assert stages.label(0) == f"cycles 1-{stages.edges[0] - 1}" and stages.label(7).endswith("+")

    ref = profile()
    again = ReferenceProfile.from_dict(json.loads(ref.to_json()))
    assert again == ref and again.stages == ref.stages
    assert set(again.by_stage) == {*(f"feature:{n}" for n in NAMES), "raw:r0", "prediction"}
    assert len(ref.to_json()) < 200_000  # per-stage distributions keep no histogram
    with pytest.raises(ValueError, match=r"has no life stages.*retrain"):
        ReferenceProfile.from_dict({**ref.to_dict(), "format": "prognos.reference/1"})
    flat = profile(stages=False)
    assert flat.stages is None and ReferenceProfile.from_dict(json.loads(flat.to_json())) == flat


def test_capture_records_carry_engine_and_cycle_and_old_lines_still_read() -> None:
    rec = CaptureRecord(1.5, "m", [0.1, 0.2], [3.0], 42.0, "engine-7", 120)
    assert CaptureRecord.from_json(rec.to_json()) == rec
    old = '{"t":1.0,"model_version":"m","features":[0.1],"raw":[2.0],"prediction":5.0}'
    assert CaptureRecord.from_json(old) == CaptureRecord(1.0, "m", [0.1], [2.0], 5.0, "", None)
    assert replace(rec, cycle=None).to_json().endswith('"cycle":null}')


def test_the_reference_profile_sits_below_training_and_lifecycle() -> None:
    """Training writes the profile and lifecycle reads it, so it lives beside the bundle: no
    training <-> lifecycle package cycle, and the profile imports nothing above the core."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[3] / "src" / "prognos"
    imports = re.compile(r"^\s*(?:from|import)\s+(prognos(?:\.\w+)*)", re.M)
    training = {m for p in (src / "training").rglob("*.py") for m in imports.findall(p.read_text())}
    assert not {m for m in training if m.startswith("prognos.lifecycle")}
    below = {m.split(".")[1] for m in imports.findall((src / "reference.py").read_text())}
    assert below <= {"errors", "bundle", "data", "features"}, below


def test_a_bundle_with_a_format_1_profile_is_refused_with_a_reason(tiny_bundle: Path, tmp_path: Path) -> None:
    from prognos.bundle import read_bundle, write_bundle
    from prognos.errors import BundleError
    from prognos.reference import REFERENCE_FILE, load_reference

    b = read_bundle(tiny_bundle)
    data = json.loads((b.path / REFERENCE_FILE).read_text())
    for key in ("stages", "by_stage"):
        data.pop(key)
    data["format"] = "prognos.reference/1"  # what bundles trained before life stages carry
    m = b.manifest
    old = write_bundle(tmp_path / "old", onnx_path=b.model_path, pipeline=b.pipeline, calibration=b.calibration,
                       dataset=m.dataset, model=m.model, validation_metrics=m.validation_metrics,
                       training_seconds=m.training_seconds, extra_files={REFERENCE_FILE: json.dumps(data)})
    with pytest.raises(BundleError, match=r"format 'prognos.reference/1' has no life stages.*retrain") as err:
        load_reference(old)
    assert "unreadable" not in str(err.value)
