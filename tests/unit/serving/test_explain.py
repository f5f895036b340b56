"""The explainer's arithmetic on networks whose true attributions are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from prognos.data.schema import CHANNELS
from prognos.serving.explain import Explainer, baseline_rul

FIELDS = ("s2", "s3", "s4", "s11")
W = 8


def linear(x: np.ndarray) -> np.ndarray:
    """RUL = 100 + sum over the window of 2*s2 - 5*s11 (s3, s4 unused): additive, no interaction."""
    return 100.0 + 2.0 * x[:, :, 0].sum(1) - 5.0 * x[:, :, 3].sum(1)


def product(x: np.ndarray) -> np.ndarray:
    """RUL = 60 + 10 * mean(s2) * mean(s3): s2 and s3 act only together."""
    return 60.0 + 10.0 * x[:, :, 0].mean(1) * x[:, :, 1].mean(1)


def recent(x: np.ndarray) -> np.ndarray:
    """RUL depends only on the last two rows of the window."""
    return 50.0 - 3.0 * x[:, -2:, :].sum((1, 2))


def window(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(W, len(FIELDS))).astype(np.float32)


def explainer(model, method: str = "occlusion", spans: int = 4, pairs: int = 1) -> Explainer:  # type: ignore[no-untyped-def]
    return Explainer(FIELDS, W, baseline_rul(model, W, len(FIELDS)), method, spans=spans,  # type: ignore[arg-type]
                     pairs=pairs)


@pytest.mark.parametrize("method", ["occlusion", "shapley"])
def test_an_additive_network_gets_its_exact_terms(method: str) -> None:
    x = window()
    e = explainer(linear, method).explain_windows(linear, x[None])[0]
    by = {c.field: c.contribution for c in e.contributions}
    assert by["s2"] == pytest.approx(2.0 * x[:, 0].sum(), abs=1e-3)
    assert by["s11"] == pytest.approx(-5.0 * x[:, 3].sum(), abs=1e-3)
    assert by["s3"] == pytest.approx(0.0, abs=1e-4) and by["s4"] == pytest.approx(0.0, abs=1e-4)
    assert e.interaction == pytest.approx(0.0, abs=1e-3)
    assert e.baseline_rul == 100.0 and e.model_rul == pytest.approx(float(linear(x[None])[0]), abs=1e-4)
    # Largest |contribution| first, named from the one channel table.
    assert [abs(c.contribution) for c in e.contributions] == sorted((abs(c.contribution) for c in e.contributions),
                                                                    reverse=True)
    assert {c.field: c.channel for c in e.contributions}["s11"] == CHANNELS["s11"]
    assert CHANNELS["s11"].label == "Ps30 (psia)"


def test_occlusion_reports_the_interaction_and_the_numbers_add_up() -> None:
    x = np.abs(window(1)) + 0.5  # both means positive: a non-zero product
    e = explainer(product).explain_windows(product, x[None])[0]
    total = e.baseline_rul + sum(c.contribution for c in e.contributions) + e.interaction
    assert total == pytest.approx(e.model_rul, abs=1e-6)
    # Removing either factor removes the whole product, so each gets all of it and the interaction
    # takes back one copy: it is reported, not hidden.
    effect = e.model_rul - 60.0
    assert {c.field: c.contribution for c in e.contributions}["s2"] == pytest.approx(effect, rel=1e-4)
    assert e.interaction == pytest.approx(-effect, rel=1e-4)


def test_shapley_splits_an_interaction_and_sums_exactly() -> None:
    x = np.abs(window(1)) + 0.5
    e = explainer(product, "shapley", pairs=3).explain_windows(product, x[None])[0]
    assert e.interaction == pytest.approx(0.0, abs=1e-6)
    assert sum(c.contribution for c in e.contributions) == pytest.approx(e.model_rul - e.baseline_rul, abs=1e-4)
    by = {c.field: c.contribution for c in e.contributions}
    assert by["s2"] == pytest.approx(by["s3"], rel=1e-4)  # symmetric players get equal shares
    assert by["s2"] == pytest.approx((e.model_rul - 60.0) / 2, rel=1e-4)


def test_spans_locate_the_cycles_that_drive_the_rul() -> None:
    x = np.abs(window(2)) + 0.1
    e = explainer(recent, spans=4).explain_windows(recent, x[None], last_cycles=[107])[0]
    assert [(s.cycles_ago_from, s.cycles_ago_to) for s in e.spans] == [(7, 6), (5, 4), (3, 2), (1, 0)]
    assert [(s.first_cycle, s.last_cycle) for s in e.spans] == [(100, 101), (102, 103), (104, 105), (106, 107)]
    assert [s.contribution for s in e.spans[:3]] == [0.0, 0.0, 0.0]
    assert e.spans[3].contribution == pytest.approx(-3.0 * float(x[-2:].sum()), rel=1e-5)
    # Only the newest span matters: the evidence is "since cycle 106".
    assert (e.to_dict()["since_cycles_ago"], e.to_dict()["since_cycle"]) == (1, 106)
    # Evidence spread evenly over the window: it takes every span to reach 80 %.
    even = explainer(linear, spans=4).explain_windows(linear, np.ones((1, W, len(FIELDS)), np.float32), [107])[0]
    assert even.since is even.spans[0] and even.to_dict()["since_cycle"] == 100


def test_one_model_call_explains_a_batch_and_matches_one_by_one() -> None:
    calls: list[int] = []

    def model(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return product(x) + linear(x)

    ex = explainer(model)
    xs = np.stack([window(i) for i in range(3)])
    calls.clear()
    together = ex.explain_windows(model, xs)
    assert calls == [3 * (1 + ex.windows_per_explanation)]
    alone = [ex.explain_windows(model, w[None])[0] for w in xs]
    assert [e.to_dict() for e in together] == [e.to_dict() for e in alone]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="explanation method 'lime'"):
        Explainer(FIELDS, W, 0.0, "lime")  # type: ignore[arg-type]


def test_global_importance_is_the_mean_absolute_occlusion_contribution() -> None:
    from prognos.serving.explain import global_importance

    xs = np.stack([window(i) for i in range(5)])
    g = global_importance(FIELDS, linear, xs, "5 test windows")
    by = {c["field"]: c for c in g["channels"]}
    assert by["s11"]["mean_abs_contribution"] == pytest.approx(float(np.abs(5.0 * xs[:, :, 3].sum(1)).mean()), abs=1e-3)
    assert by["s2"]["mean_contribution"] == pytest.approx(float((2.0 * xs[:, :, 0].sum(1)).mean()), abs=1e-3)
    assert by["s3"]["mean_abs_contribution"] == 0.0
    assert [c["field"] for c in g["channels"]][:2] == ["s11", "s2"] and by["s11"]["name"] == "Ps30"
    assert (g["windows"], g["source"], g["baseline_rul"]) == (5, "5 test windows", 100.0)
