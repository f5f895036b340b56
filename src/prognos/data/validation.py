"""The one reading validator, shared by ``prognos predict``, REST, gRPC, MQTT and fleet ingestion,
and the other edge rules every front end applies alike: the engine-id rule (:func:`check_engine_id`),
the integer-range rule for ids and paging (:func:`check_int`, :data:`MAX_ID`) and the JSON body
parser (:func:`parse_json`: depth limit, duplicate keys refused).

Input is what JSON decodes to: a list of reading objects (``{"cycle": 7, "s2": 642.1, ...}``).
Output is a :class:`ValidSequence` ready for the feature pipeline. Every problem raises
:class:`~prognos.errors.ValidationError` naming the path of the offending value, e.g.
``sensor_data[3].s4: 1e9 is outside the plausible range [1350.2, 1470.9]``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from prognos.data.schema import MEASUREMENT_FIELDS, READING_FIELDS
from prognos.errors import ValidationError

__all__ = ["ENGINE_ID_PATTERN", "MAX_ID", "MAX_JSON_DEPTH", "ReadingSpec", "ValidSequence", "check_engine_id",
           "check_int", "check_values", "parse_json", "validate_reading", "validate_sequence"]

_INDEX = {name: i for i, name in enumerate(MEASUREMENT_FIELDS)}
_ALLOWED = frozenset(READING_FIELDS)
_MAX_CYCLE = 2**53  # cycles are counted in int64; beyond 2**53 a float cycle is no longer exact

# ---- edge rules -------------------------------------------------------------------------------
ENGINE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
"""1-64 of ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit; matched with ``fullmatch`` so
that a trailing newline (``e1\\n``) or any control character is refused, not a second engine."""

MAX_ID = 2**63 - 1
"""The largest id, limit or offset any route accepts: a signed 64-bit integer, what SQLite and
PostgreSQL (``BIGINT``) store. Larger integers are refused with 422, not an overflow (500)."""

MAX_JSON_DEPTH = 32
"""Nesting levels a JSON body may have (a predict body has 3; a batch 5): deeper is refused with
422 before Python's recursion limit could turn it into a 500."""


def check_engine_id(engine_id: object, where: str = "engine_id") -> str:
    """The one engine-id rule (REST, gRPC, file upload, MQTT): returns the id or raises
    :class:`ValidationError` naming ``where``."""
    if not isinstance(engine_id, str) or ENGINE_ID_PATTERN.fullmatch(engine_id) is None:
        shown = repr(engine_id)
        shown = shown if len(shown) <= 90 else shown[:80] + "..."
        raise ValidationError(f"{where}: {shown} is not a valid engine id (1-64 of A-Z a-z 0-9 . _ : -, starting "
                              "with a letter or digit)")
    return engine_id


def check_int(value: int, where: str, low: int = 0, high: int = MAX_ID) -> int:
    """The integer-range rule for ids and paging parameters (``low``..``high`` inclusive)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{where}: {value!r} is not a whole number from {low} to {high}")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError(f"body: duplicate key {key!r} in one object (send each field once)")
        out[key] = value
    return out


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _depth(raw: bytes) -> int:
    """Deepest nesting of ``[``/``{`` outside strings, in one vectorised pass (no recursion)."""
    skeleton = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    step = ((skeleton == ord("[")) | (skeleton == ord("{"))).astype(np.int32)
    step -= ((skeleton == ord("]")) | (skeleton == ord("}"))).astype(np.int32)
    return int(np.cumsum(step).max()) if len(step) else 0


def _keys(value: Any) -> int:
    """Keys of every object in a decoded document (iterative: depth was bounded already)."""
    n, stack = 0, [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            n += len(v)
            stack.extend(x for x in v.values() if type(x) in (dict, list))
        elif type(v) is list:
            stack.extend(x for x in v if type(x) in (dict, list))
    return n


def parse_json(raw: bytes, where: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The one JSON body parser of every front end. Refuses (422, naming ``where``) bodies that are
    not JSON, nested deeper than ``max_depth``, or repeat a key within one object (JSON leaves that
    undefined; silently taking the last value would hide a client bug).

    Fast path: orjson, then a proof that no key repeated — every key in the text is followed by
    exactly one ``:``, so when the text holds as many ``:`` as the decoded objects hold keys,
    nothing was dropped. Otherwise (a ``:`` inside a string, NaN, integers beyond 64 bits, which
    orjson refuses but the validator should name precisely) the exact path runs: Python's json with
    a duplicate-refusing hook, after a depth check that needs no recursion."""
    if raw.count(b"[") + raw.count(b"{") > max_depth and _depth(raw) > max_depth:
        raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        if raw.count(b":") == _keys(value):
            return value
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:  # unreachable after the depth check; kept so no input can become a 500
        raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels") from None


@dataclass(frozen=True)
class ReadingSpec:
    """What a model needs of a reading. ``ranges`` maps field -> [low, high] (plausible values)."""

    required: tuple[str, ...]
    ranges: Mapping[str, Sequence[float]] = field(default_factory=dict)
    max_readings: int = 500


@dataclass(frozen=True)
class ValidSequence:
    """Validated readings of one engine: ``values`` (n, 24) float64 in MEASUREMENT_FIELDS order
    (NaN for fields not given); ``cycles`` (n,) int64, or None when the readings carry no cycle."""

    values: np.ndarray
    cycles: np.ndarray | None

    def __len__(self) -> int:
        return len(self.values)


def _number(v: Any, where: str) -> float:
    # bool is an int in Python; a sensor that reads `true` is a client bug, not 1.0.
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValidationError(f"{where}: {v!r} is not a number")
    try:
        f = float(v)
    except OverflowError:  # an integer beyond float range: 1 followed by 400 zeros
        bits = v.bit_length() if isinstance(v, int) else 0
        raise ValidationError(f"{where}: an integer of {bits} bits is not a finite number") from None
    if not math.isfinite(f):
        raise ValidationError(f"{where}: {v!r} is not a finite number")
    return f


def validate_reading(reading: Any, spec: ReadingSpec, where: str) -> tuple[int | None, np.ndarray]:
    if not isinstance(reading, Mapping):
        raise ValidationError(f"{where}: expected an object of field: number, got {type(reading).__name__}")
    for key in reading:
        if key not in _ALLOWED:
            raise ValidationError(f"{where}.{key}: unknown field (allowed: cycle, setting_1..setting_3, s1..s21)")
    row = np.full(len(MEASUREMENT_FIELDS), np.nan)
    for key, v in reading.items():
        if key == "cycle" or (v is None and key not in spec.required):
            continue
        row[_INDEX[key]] = _number(v, f"{where}.{key}")
    for name in spec.required:
        if reading.get(name) is None:
            raise ValidationError(f"{where}.{name}: missing (the model requires {name})", "missing_sensor")
        lo_hi = spec.ranges.get(name)
        if lo_hi is not None:
            val = row[_INDEX[name]]
            if not lo_hi[0] <= val <= lo_hi[1]:
                raise ValidationError(
                    f"{where}.{name}: {val:g} is outside the plausible range [{lo_hi[0]:.6g}, {lo_hi[1]:.6g}]",
                    "out_of_range")
    cycle = reading.get("cycle")
    if cycle is not None:
        c = _number(cycle, f"{where}.cycle")
        if c != int(c) or c < 0:
            raise ValidationError(f"{where}.cycle: {cycle!r} is not a non-negative whole number")
        if c > _MAX_CYCLE:  # would overflow the int64 cycle array
            raise ValidationError(f"{where}.cycle: {cycle!r} is larger than {_MAX_CYCLE}")
        return int(c), row
    return None, row


def _validate_common(readings: Sequence[Any], spec: ReadingSpec) -> ValidSequence | None:
    """Fast path for the common case — every reading a dict of known fields holding finite numbers
    (or null in fields the model does not need), required values in range, cycles all given and
    increasing or all absent. Returns None at the first sign of anything else, so the exact checks
    in :func:`validate_sequence` run and raise their precise message; a sequence accepted here is
    accepted there with the same values. It only makes the valid case ~5x faster (per-value Python
    calls dominated the cost of a serving request)."""
    table: list[list[Any]] = []
    cycles: list[Any] = []
    for r in readings:
        if type(r) is not dict or not r.keys() <= _ALLOWED:
            return None
        for v in r.values():
            t = type(v)
            if t is float:
                if not math.isfinite(v):
                    return None
            elif t is not int and v is not None:
                return None  # bool, str, nested ...: the exact path names it
        table.append([r.get(f) for f in MEASUREMENT_FIELDS])
        cycles.append(r.get("cycle"))
    try:
        rows = np.array(table, dtype=np.float64)  # None -> NaN
    except (OverflowError, ValueError):  # an int too large for a float
        return None
    for name in spec.required:
        col = rows[:, _INDEX[name]]
        lo_hi = spec.ranges.get(name)
        if np.isnan(col).any() or (lo_hi is not None and not ((col >= lo_hi[0]) & (col <= lo_hi[1])).all()):
            return None
    if all(c is None for c in cycles):
        return ValidSequence(rows, None)
    if any(c is None or c < 0 or c > _MAX_CYCLE or c != int(c) for c in cycles):
        return None
    cyc = np.array([int(c) for c in cycles], dtype=np.int64)
    if len(cyc) > 1 and (np.diff(cyc) <= 0).any():
        return None
    return ValidSequence(rows, cyc)


def validate_sequence(readings: Any, spec: ReadingSpec, where: str = "sensor_data") -> ValidSequence:
    """Validate one engine's readings (oldest first)."""
    if not isinstance(readings, Sequence) or isinstance(readings, str | bytes):
        raise ValidationError(f"{where}: expected a list of readings")
    if len(readings) == 0:
        raise ValidationError(f"{where}: is empty; send at least one reading")
    if len(readings) > spec.max_readings:
        raise ValidationError(f"{where}: {len(readings)} readings exceed the limit of {spec.max_readings}")
    fast = _validate_common(readings, spec)
    if fast is not None:
        return fast
    cycles: list[int | None] = []
    rows = np.empty((len(readings), len(MEASUREMENT_FIELDS)))
    for i, r in enumerate(readings):
        c, rows[i] = validate_reading(r, spec, f"{where}[{i}]")
        cycles.append(c)
    given = [c is not None for c in cycles]
    if any(given) and not all(given):
        i = given.index(False)
        raise ValidationError(f"{where}[{i}].cycle: missing (give cycle on every reading or on none)")
    cyc = np.array(cycles, dtype=np.int64) if all(given) else None
    if cyc is not None and len(cyc) > 1:
        bad = np.flatnonzero(np.diff(cyc) <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise ValidationError(f"{where}[{i}].cycle: {cyc[i]} does not increase (previous is {cyc[i - 1]})")
    return ValidSequence(rows, cyc)


def check_values(values: np.ndarray, spec: ReadingSpec, where: str) -> None:
    """Check already-numeric rows (from a file) against the spec: required present, in range."""
    for name in spec.required:
        col = values[:, _INDEX[name]]
        missing = np.flatnonzero(np.isnan(col))
        if len(missing):
            raise ValidationError(f"{where}, row {int(missing[0]) + 1}: {name} missing (the model requires it)",
                                  "missing_sensor")
        lo_hi = spec.ranges.get(name)
        if lo_hi is not None:
            out = np.flatnonzero((col < lo_hi[0]) | (col > lo_hi[1]))
            if len(out):
                r = int(out[0])
                raise ValidationError(
                    f"{where}, row {r + 1}: {name}={col[r]:g} is outside the plausible range "
                    f"[{lo_hi[0]:.6g}, {lo_hi[1]:.6g}]", "out_of_range")
