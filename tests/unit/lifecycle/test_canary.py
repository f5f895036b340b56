"""Shadow canary: sampling on the request path, background scoring by the candidate, agreement
statistics, stored pairs, following the registry's ``candidate`` alias — and that shadow work can
neither change, fail nor hold up an answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from prognos.bundle import read_bundle
from prognos.config import Settings, get_settings
from prognos.correction import AgeCorrection
from prognos.fleet import open_store
from prognos.lifecycle.canary import CandidateRef, FixedCandidate, RegistryCandidate, ShadowCanary
from prognos.lifecycle.feedback import model_performance
from prognos.lifecycle.registry import Registry
from prognos.lifecycle.stores import LocalStore
from prognos.serving.predictor import Predictor
from prognos.serving.runtime import OnnxRuntime
from prognos.serving.service import PredictionService, load_predictor
from prognos.status import health_status
from tests.unit.serving.factory import readings


class OffsetRuntime:
    """The production network plus ``offset`` cycles: a candidate whose disagreement is known."""

    def __init__(self, model: Path, offset: float, gate: threading.Event | None = None) -> None:
        self.inner, self.offset, self.gate = OnnxRuntime(model), offset, gate
        self.entered = threading.Event()

    def run(self, x: np.ndarray) -> np.ndarray:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(30):
            raise RuntimeError("gate never opened")
        return self.inner.run(x) + self.offset


class BrokenRuntime:
    def run(self, x: np.ndarray) -> np.ndarray:
        raise RuntimeError("candidate exploded")


def uncorrected(p: Predictor) -> Predictor:
    """``p`` serving its network's raw output: the age correction (a non-linear map of it) off, so a
    candidate's served disagreement with production is exactly its runtime's offset."""
    p.correction = AgeCorrection()
    return p


def loader(runtime: Callable[[Path], object]) -> Callable[[Path], Predictor]:
    return lambda path: uncorrected(Predictor(read_bundle(path), runtime=runtime(path / "model.onnx")))  # type: ignore[arg-type]


def settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {"cache_size": 0, "canary_fraction": 1.0, "canary_tolerance": 10.0,
                               "database_url": f"sqlite:///{tmp_path / 'fleet.db'}", "registry_poll_s": 0.05}
    base.update(kw)
    return get_settings(**base)


def items(bundle: Path, n: int) -> list[tuple[str, list[dict[str, object]]]]:
    return [(f"e{i}", readings(bundle, 30 + i % 10, engine=i % 6)) for i in range(n)]


def test_candidate_scores_sampled_traffic_in_the_background(tiny_bundle: Path, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = settings(tmp_path)
    store = open_store(s)
    service = PredictionService(s, uncorrected(load_predictor(tiny_bundle, s)))
    candidate_bundle = make_bundle("cand")
    canary = ShadowCanary(s, FixedCandidate(candidate_bundle, "v2"), store=lambda: store,
                          load=loader(lambda m: OffsetRuntime(m, 7.0)), seed=0)
    service.observers.append(canary.observe)

    async def go():  # type: ignore[no-untyped-def]
        try:
            await canary.refresh()
            answers = await service.predict_many(items(tiny_bundle, 20))
            assert canary.counters.scored == 0  # nothing scored on the request path
            while await canary.drain():
                pass
            return answers
        finally:
            await service.close()

    answers = asyncio.run(go())
    production = read_bundle(tiny_bundle).version
    candidate = read_bundle(candidate_bundle).version
    assert {a.prediction.model_version for a in answers} == {production}  # answers come from production
    snap = canary.snapshot()
    assert snap["candidate"] == {"label": "v2", "model_version": candidate}
    assert snap["sampled"] == snap["scored"] == snap["stored"] == 20 and snap["dropped"] == 0
    (pair,) = snap["pairs"]
    assert (pair["production_version"], pair["candidate_version"], pair["n"]) == (production, candidate, 20)
    assert pair["mean_diff"] == pytest.approx(7.0, abs=1e-3) and pair["max_abs_diff"] == pytest.approx(7.0, abs=1e-3)
    assert pair["agreement"] == 1.0  # within the 10-cycle tolerance
    # the candidate's status by the one rule: its own interval's lower bound
    cand_lower = read_bundle(candidate_bundle).calibration.apply(np.array([a.prediction.rul + 7.0 for a in answers]))
    expected_same = np.mean([health_status(lo, s.warning_rul, s.critical_rul) == a.status
                             for lo, a in zip(cand_lower.lower, answers, strict=True)])
    assert pair["status_agreement"] == pytest.approx(expected_same)

    (stored,) = model_performance(store).shadow
    assert (stored.production_version, stored.candidate_version, stored.n_pairs) == (production, candidate, 20)
    store.db.dispose()


def test_shadow_work_never_holds_up_or_fails_an_answer(tiny_bundle: Path, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = settings(tmp_path, canary_max_pending=5)
    service = PredictionService(s, uncorrected(load_predictor(tiny_bundle, s)))
    gate = threading.Event()  # the candidate is stuck until the gate opens
    runtimes: list[OffsetRuntime] = []

    def stuck(model: Path) -> OffsetRuntime:
        runtimes.append(OffsetRuntime(model, 30.0, gate))
        return runtimes[-1]

    canary = ShadowCanary(s, FixedCandidate(make_bundle("slow"), "v9"), load=loader(stuck))
    service.observers.append(canary.observe)

    async def go() -> tuple[int, int]:
        try:
            await canary.refresh()
            runner = asyncio.create_task(canary.run())
            await service.predict_many(items(tiny_bundle, 3))
            while not runtimes[0].entered.is_set():  # the canary picked the jobs up and is stuck in the candidate
                await asyncio.sleep(0.01)
            answered = 0
            for _ in range(4):  # while the candidate is stuck, requests keep being answered
                answered += len(await service.predict_many(items(tiny_bundle, 5)))
            dropped = canary.counters.dropped
            gate.set()
            while canary.counters.scored + canary.counters.dropped < canary.counters.sampled:
                await asyncio.sleep(0.01)
            runner.cancel()
            return answered, dropped
        finally:
            await service.close()

    answered, dropped = asyncio.run(asyncio.wait_for(go(), 60))
    assert answered == 20
    assert dropped > 0  # the bounded queue shed shadow jobs instead of growing
    assert canary.counters.sampled == 23 and canary.counters.scored + canary.counters.dropped == 23
    assert canary.pairs and all(p.max_abs_diff == pytest.approx(30.0, abs=1e-3) for p in canary.pairs.values())
    assert all(p.within_tolerance == 0 for p in canary.pairs.values())


def test_a_failing_candidate_is_counted_not_raised(tiny_bundle: Path, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = settings(tmp_path)
    service = PredictionService(s, uncorrected(load_predictor(tiny_bundle, s)))
    canary = ShadowCanary(s, FixedCandidate(make_bundle("broken"), "vx"), load=loader(lambda m: BrokenRuntime()))
    service.observers.append(canary.observe)

    async def go() -> int:
        try:
            await canary.refresh()
            n = len(await service.predict_many(items(tiny_bundle, 4)))
            await canary.drain()
            return n
        finally:
            await service.close()

    assert asyncio.run(go()) == 4
    assert canary.counters.dropped == 4 and canary.counters.errors == 1
    assert "candidate exploded" in (canary.counters.last_error or "")


def test_nothing_is_shadowed_without_a_distinct_candidate_or_with_fraction_zero(tiny_bundle: Path, tmp_path: Path
                                                                                ) -> None:
    s = settings(tmp_path)
    predictor = uncorrected(load_predictor(tiny_bundle, s))
    service = PredictionService(s, predictor)
    none = ShadowCanary(s, FixedCandidate(None))
    itself = ShadowCanary(s, FixedCandidate(tiny_bundle, "same"))  # the production version in shadow: pointless
    off = ShadowCanary(settings(tmp_path, canary_fraction=0.0), FixedCandidate(tiny_bundle, "x"))
    service.observers += [none.observe, itself.observe, off.observe]

    async def go() -> None:
        try:
            for c in (none, itself, off):
                await c.refresh()
            await service.predict_many(items(tiny_bundle, 5))
        finally:
            await service.close()

    asyncio.run(go())
    assert none.candidate is None and itself.candidate is not None
    assert none.counters.sampled == itself.counters.sampled == off.counters.sampled == 0


def test_sampling_follows_the_fraction(tiny_bundle: Path, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = settings(tmp_path, canary_fraction=0.25, canary_max_pending=10_000)
    predictor = uncorrected(load_predictor(tiny_bundle, s))
    canary = ShadowCanary(s, FixedCandidate(make_bundle("frac"), "v2"), seed=3)
    asyncio.run(canary.refresh())
    service = PredictionService(s, predictor)
    seqs = [predictor.validate(r) for _, r in items(tiny_bundle, 10)]

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await service.predict_valid([f"e{i}" for i in range(10)], seqs)
        finally:
            await service.close()

    answers = asyncio.run(go())
    for _ in range(400):  # 4000 predictions observed
        canary.observe(predictor, [f"e{i}" for i in range(10)], seqs, answers)
    assert 0.21 < canary.counters.sampled / 4000 < 0.29


def test_the_registry_candidate_is_followed(tiny_bundle: Path, make_bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(LocalStore(tmp_path / "registry"), tmp_path / "cache")
    source = RegistryCandidate(registry)
    assert source.resolve() is None  # empty registry: no candidate
    registry.register(tiny_bundle)
    registry.approve(1)
    registry.promote(1)  # promoting clears the candidate alias
    assert source.resolve() is None
    registry.register(make_bundle("reg2"))
    ref = source.resolve()
    assert isinstance(ref, CandidateRef) and ref.label == "v2"
    assert read_bundle(ref.path).version == read_bundle(make_bundle("reg2")).version

    s = settings(tmp_path)
    canary = ShadowCanary(s, source)
    asyncio.run(canary.refresh())
    assert canary.candidate_version == read_bundle(make_bundle("reg2")).version
    registry.approve(2)
    registry.promote(2)
    asyncio.run(canary.refresh())
    assert canary.candidate is None and canary.snapshot()["candidate"] is None
