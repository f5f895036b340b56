"""Property-based tests (hypothesis) of the edge rules and the gRPC messages: whatever a client
sends, the validator and the message conversion answer with a value or a ValidationError naming
the field, never another exception; and the edge rules agree with their definitions."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prognos.data.schema import READING_FIELDS
from prognos.data.validation import (
    MAX_ID,
    MAX_JSON_DEPTH,
    ReadingSpec,
    check_engine_id,
    check_int,
    check_text,
    parse_json,
    validate_sequence,
)
from prognos.errors import ValidationError
from prognos.serving.grpc.messages import engine_input, reading_messages
from prognos.serving.grpc.v1 import rul_pb2

# PROGNOS_FUZZ_BUDGET multiplies every example budget of the suite (default 1: CI's time budget).
BUDGET = float(os.environ.get("PROGNOS_FUZZ_BUDGET", "1"))
FAST = settings(max_examples=max(10, int(150 * BUDGET)), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=30)
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
field_names = st.sampled_from([*READING_FIELDS, "bogus", "S2", ""])
readingish = st.dictionaries(field_names, numbers | st.none() | st.text(max_size=3) | st.booleans(), max_size=8)
SPEC = ReadingSpec(required=("s2", "s3"), ranges={"s2": [600.0, 700.0]}, max_readings=20)
ENGINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@FAST
@given(json_values)
def test_parse_json_round_trips_every_document_within_the_depth(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert parse_json(raw) == json.loads(raw)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=5), json_scalars, min_size=1, max_size=5), st.data())
def test_parse_json_refuses_every_repeated_key(obj: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(obj)))
    text = json.dumps(obj)[:-1] + f", {json.dumps(key)}: 1}}"
    with pytest.raises(ValidationError, match="duplicate key"):
        parse_json(text.encode())


def _shape_by_definition(value: Any, depth: int = 1) -> tuple[int, int, int]:
    """(depth, keys, colons in keys and in strings below the top) of a decoded document, by recursion."""
    if isinstance(value, dict):
        children, keys, colons = list(value.values()), len(value), sum(k.count(":") for k in value)
    elif isinstance(value, list):
        children, keys, colons = value, 0, 0
    else:
        return 0, 0, 0
    colons += sum(v.count(":") for v in children if isinstance(v, str))
    parts = [_shape_by_definition(v, depth + 1) for v in children]
    return (max([depth, *(p[0] for p in parts)]), keys + sum(p[1] for p in parts),
            colons + sum(p[2] for p in parts))


@FAST
@given(st.recursive(json_scalars | st.text(alphabet=st.sampled_from(":ab"), max_size=4),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(alphabet=st.sampled_from(":ab"), max_size=4), inner, max_size=4),
                    max_leaves=40))
def test_the_body_walk_measures_depth_keys_and_colons_as_defined(value: Any) -> None:
    """The level-by-level walk behind the depth limit and the duplicate-key proof (parse_json)."""
    from prognos.data.validation import _shape

    shape = _shape(value, True)
    assert (shape.depth, shape.keys, shape.colons) == _shape_by_definition(value)
    assert _shape(value, False).colons == 0


colon_text = st.text(alphabet=st.sampled_from(':a"\\\u00e9'), max_size=6)


@FAST
@given(st.dictionaries(colon_text, colon_text | st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=5), st.data(),
       st.booleans())
def test_colons_and_escapes_inside_strings_neither_hide_nor_invent_a_repeated_key(
        obj: dict[str, Any], data: st.DataObject, ascii_only: bool) -> None:
    """The duplicate-key proof counts structural colons (issue 19); strings full of ``:``, quotes
    and backslashes, with ``:`` written plainly or as ``\\u003a``, must not fool it either way."""
    text = json.dumps(obj, ensure_ascii=ascii_only)
    if data.draw(st.booleans()):
        text = text.replace("a:", "a\\u003a")  # some colons inside strings written as escapes
    assert parse_json(text.encode()) == json.loads(text)
    key = data.draw(st.sampled_from(sorted(obj)))
    with pytest.raises(ValidationError, match="duplicate key"):
        parse_json((text[:-1] + f", {json.dumps(key)}: 1}}").encode())


@FAST
@given(st.text(max_size=300))
def test_the_text_rule_admits_exactly_short_storable_strings(value: str) -> None:
    storable = "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if len(value) <= 256 and storable:
        assert check_text(value, "tags.a") == value
    else:
        with pytest.raises(ValidationError, match=r"tags\.a"):
            check_text(value, "tags.a")


@FAST
@given(st.integers(MAX_JSON_DEPTH + 1, 3_000), st.sampled_from(["[", '{"a":']))
def test_parse_json_refuses_deep_nesting_without_recursing(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "1" + closer * depth).encode()
    with pytest.raises(ValidationError, match="nested deeper"):
        parse_json(raw)


@FAST
@given(st.binary(max_size=200))
def test_parse_json_answers_any_bytes_with_a_value_or_a_validation_error(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        parse_json(raw)


@FAST
@given(st.text(max_size=70))
def test_the_engine_id_rule_is_exactly_its_pattern(engine_id: str) -> None:
    ok = ENGINE_ID.fullmatch(engine_id) is not None
    if ok:
        assert check_engine_id(engine_id) == engine_id
    else:
        with pytest.raises(ValidationError, match="engine_id"):
            check_engine_id(engine_id)
    assert check_engine_id.__name__ and not (ok and any(c in engine_id for c in "\n\r\t\x00 "))


@FAST
@given(st.integers(-(2**80), 2**80))
def test_the_integer_rule_admits_exactly_the_64_bit_range(value: int) -> None:
    if 0 <= value <= MAX_ID:
        assert check_int(value, "offset") == value
    else:
        with pytest.raises(ValidationError, match="offset"):
            check_int(value, "offset")


@FAST
@given(st.lists(readingish, max_size=25) | json_values)
def test_the_validator_answers_anything_with_a_sequence_or_a_named_validation_error(readings: Any) -> None:
    try:
        seq = validate_sequence(readings, SPEC, "sensor_data")
    except ValidationError as exc:
        assert str(exc).startswith("sensor_data"), str(exc)
        assert exc.kind in ("invalid", "missing_sensor", "out_of_range")
        return
    assert len(seq) == len(readings) and seq.values.shape == (len(readings), 24)
    assert all(600 <= r["s2"] <= 700 and math.isfinite(r["s3"]) for r in readings)


@FAST
@given(st.lists(readingish, max_size=10))
def test_grpc_messages_carry_readings_or_name_the_field(readings: list[dict[str, Any]]) -> None:
    try:
        messages = reading_messages(readings)
    except ValidationError as exc:
        assert str(exc).startswith("sensor_data["), str(exc)
        return
    request = rul_pb2.PredictRULRequest(engine_id="e1", sensor_data=messages)
    back = engine_input(rul_pb2.PredictRULRequest.FromString(request.SerializeToString()))
    assert back.engine_id == "e1" and len(back.readings) == len(readings)
    for sent, got in zip(readings, back.readings, strict=True):
        expected = {k: v for k, v in sent.items() if v is not None}
        assert set(got) == set(expected)
        for k, v in expected.items():
            assert got[k] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(got[k])) or \
                (k != "cycle" and math.isclose(got[k], v, rel_tol=1e-6))


@FAST
@given(st.binary(max_size=120))
def test_grpc_requests_from_arbitrary_bytes_never_crash_the_conversion(raw: bytes) -> None:
    try:
        request = rul_pb2.IngestReadingsRequest.FromString(raw)
    except Exception:  # not a protobuf at all: the gRPC runtime refuses it before our code runs
        return
    with contextlib.suppress(ValidationError):
        engine_input(request)
