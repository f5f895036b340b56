"""The validator's fast path (serving's hottest code) must agree with the exact checks everywhere:
same arrays for accepted input, same message for refused input."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import prognos.data.validation as validation
from prognos.errors import ValidationError
from prognos.serving.predictor import Predictor
from tests.unit.serving.factory import readings

MUTATIONS = ["none", "drop", "null", "nan", "inf", "bool", "str", "range", "unknown", "cycle_back", "cycle_float",
             "cycle_negative", "cycle_missing_one", "cycles_absent", "huge_int", "huge_cycle", "int_value", "list",
             "extra_known_null", "extra_known_value", "reorder", "cycles_null", "cycle_null_one", "huge_int_optional",
             "nan_optional"]


def mutate(rows: list[dict[str, Any]], kind: str, rng: random.Random, required: list[str]) -> list[Any]:
    rows = [dict(r) for r in rows]
    i = rng.randrange(len(rows))
    f = rng.choice(required)
    if kind == "drop":
        del rows[i][f]
    elif kind == "null":
        rows[i][f] = None
    elif kind == "nan":
        rows[i][f] = float("nan")
    elif kind == "inf":
        rows[i][f] = rng.choice([float("inf"), float("-inf")])
    elif kind == "bool":
        rows[i][f] = True
    elif kind == "str":
        rows[i][f] = "642.1"
    elif kind == "range":
        rows[i][f] = 1e9
    elif kind == "unknown":
        rows[i]["s22"] = 1.0
    elif kind.startswith("cycle") and not all("cycle" in r for r in rows):
        pass  # an earlier mutation removed cycles
    elif kind == "cycle_back" and i > 0:
        rows[i]["cycle"] = rows[i - 1]["cycle"]
    elif kind == "cycle_float":
        rows[i]["cycle"] = rows[i]["cycle"] + rng.choice([0.0, 0.5])
    elif kind == "cycle_negative":
        rows[0]["cycle"] = -1
    elif kind == "cycle_missing_one":
        del rows[i]["cycle"]
    elif kind == "cycles_absent":
        for r in rows:
            r.pop("cycle", None)
    elif kind == "huge_int":
        rows[i][f] = 10**400
    elif kind == "huge_cycle":
        rows[-1]["cycle"] = 10**30
    elif kind == "int_value":
        rows[i][f] = int(rows[i][f])
    elif kind == "list":
        rows[i] = [1, 2]  # type: ignore[assignment]
    elif kind == "extra_known_null":
        rows[i]["s1"] = None
    elif kind == "extra_known_value":
        rows[i]["setting_1"] = rng.choice([0.0, float("nan")])
    elif kind == "reorder" and isinstance(rows[i], dict):  # same fields, another order
        items = list(rows[i].items())
        rng.shuffle(items)
        rows[i] = dict(items)
    elif kind == "cycles_null":
        rows = [{**r, "cycle": None} if isinstance(r, dict) else r for r in rows]
    elif kind == "cycle_null_one" and isinstance(rows[i], dict):
        rows[i]["cycle"] = None
    elif kind == "huge_int_optional":  # beyond int64, within float range, in a field the model does not need
        rows = [{**r, "s1": 1.0} if isinstance(r, dict) else r for r in rows]
        if isinstance(rows[i], dict):
            rows[i]["s1"] = 10**300
    elif kind == "nan_optional":
        rows = [{**r, "s1": None} if isinstance(r, dict) else r for r in rows]
        if isinstance(rows[i], dict):
            rows[i]["s1"] = float("nan")
    return rows


def outcome(rows: list[Any], p: Predictor) -> tuple[str, Any]:
    try:
        seq = p.validate(rows)
    except ValidationError as exc:
        return "error", str(exc)
    return "ok", (seq.values.tobytes(), None if seq.cycles is None else seq.cycles.tolist())


def test_fast_path_agrees_with_the_exact_checks(predictor: Predictor, tiny_bundle: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    required = list(predictor.spec.required)
    cases = []
    for k in range(400):
        rows = readings(tiny_bundle, rng.randint(1, 25), engine=k % 6, start=rng.randint(0, 40))
        kinds = sorted(rng.sample(MUTATIONS, rng.choice([1, 1, 2])), key=lambda k: k == "list")  # list last
        for kind in kinds:
            rows = mutate(rows, kind, rng, required)
        cases.append(rows)
    fast = [outcome(c, predictor) for c in cases]
    monkeypatch.setattr(validation, "_validate_common", lambda readings, spec: None)
    exact = [outcome(c, predictor) for c in cases]
    assert fast == exact
    kinds_seen = {o[0] for o in fast}
    assert kinds_seen == {"ok", "error"}  # the sample exercises both


def test_fast_path_takes_the_common_case(predictor: Predictor, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 30)
    seq = validation._validate_common(rows, predictor.spec)
    assert seq is not None and seq.cycles is not None and seq.cycles.tolist() == [r["cycle"] for r in rows]
    assert np.isnan(seq.values[:, 0]).all()  # setting_1 not given
    # The same fields in another order on some readings, and nulls where the model needs nothing.
    shuffled = [{**(dict(reversed(list(r.items()))) if i % 3 else r), "s1": None} for i, r in enumerate(rows)]
    again = validation._validate_common(shuffled, predictor.spec)
    assert again is not None and again.values.tobytes() == seq.values.tobytes()
    assert again.cycles is not None and again.cycles.tolist() == seq.cycles.tolist()


def test_huge_integers_are_a_validation_error_not_a_crash(predictor: Predictor, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 3)
    f = predictor.spec.required[0]
    with pytest.raises(ValidationError, match=rf"sensor_data\[1\]\.{f}: an integer of \d+ bits is not a finite"):
        predictor.validate([rows[0], {**rows[1], f: 10**400}, rows[2]])
    with pytest.raises(ValidationError, match=r"sensor_data\[2\]\.cycle: .* is larger than"):
        predictor.validate([rows[0], rows[1], {**rows[2], "cycle": 10**30}])
