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

import asyncio
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from typing import Any

import numpy as np
import orjson

from prognos.data.schema import MEASUREMENT_FIELDS, READING_FIELDS
from prognos.errors import ValidationError

__all__ = ["ENGINE_ID_PATTERN", "MAX_ID", "MAX_INT_DIGITS", "MAX_JSON_DEPTH", "MAX_NAME_CHARS", "MAX_TAGS",
           "MAX_TEXT_CHARS", "ReadingSpec", "ValidSequence", "check_engine_id", "check_int", "check_tags", "check_text",
           "check_values", "clip", "parse_json", "parse_json_off_loop", "shown", "validate_reading",
           "validate_sequence"]

_INDEX = {name: i for i, name in enumerate(MEASUREMENT_FIELDS)}
_ALLOWED = frozenset(READING_FIELDS)
_PLAIN = frozenset({float, int, type(None)})  # the value types the fast path takes
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


MAX_INT_DIGITS = 400
"""Digits an integer literal in a body may have (``1e308``, the float range, has 309): longer is
refused with 422 before Python's own 4,300-digit conversion limit could raise a ValueError (500)."""

MAX_TEXT_CHARS = 256
"""The one length rule for every string prognos stores or echoes from a client (tag names and
values, model families, key names, filters; see :func:`check_text`), and how much of a
client's value an error message or log line quotes (:func:`shown`)."""

_SLOW_PATH_MAX = 2**20  # bytes: the exact (Python-json) path runs only on bodies up to this size
_OFF_LOOP_BYTES = 64 * 2**10  # bodies above this are parsed in a worker thread (parse_json_off_loop)


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters (error messages and log lines quote a
    client's value, never all of it: a 7 MB field name must not become a 7 MB answer)."""
    text = repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit])
    return text if len(text) <= limit + 2 else text[:limit] + "..."


def clip(text: str, limit: int = 64) -> str:
    """A client's field name as an error message names it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "..."


MAX_NAME_CHARS = 64
"""Names prognos stores in a 64-character column: engine ids, model families, key names, tag names."""

MAX_TAGS = 32  # tags per engine


def check_text(value: object, where: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """The one rule for a client's string that is stored or echoed: at most ``max_chars``
    characters, no NUL (PostgreSQL cannot store it) and no lone surrogate (not UTF-8: neither
    database can store it, and a page that reads it back would fail). Both databases therefore
    give the same answer, a 422 naming ``where``, before anything is written."""
    if not isinstance(value, str):
        raise ValidationError(f"{where}: expected a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise ValidationError(f"{where}: {len(value)} characters (at most {max_chars})")
    if "\x00" in value:
        raise ValidationError(f"{where}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{where}: contains a lone surrogate (not valid Unicode text)") from None
    return value


def check_tags(tags: object, where: str = "tags") -> dict[str, str | int | float | bool | None]:
    """An engine's tags: at most :data:`MAX_TAGS` names (:func:`check_text`, up to
    :data:`MAX_NAME_CHARS`) each holding a string (:func:`check_text`), a finite number, a boolean
    or null. Nested values and NaN/Infinity (which JSON columns would store as null) are refused."""
    if not isinstance(tags, dict):
        raise ValidationError(f"{where}: expected an object of name: value")
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"{where}: {len(tags)} tags (at most {MAX_TAGS})")
    for name, value in tags.items():
        check_text(name, f"{where}: a tag name", MAX_NAME_CHARS)
        at = f"{where}.{clip(name)}"
        if isinstance(value, str):
            check_text(value, at)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"{at}: {value!r} is not a finite number")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
            raise ValidationError(f"{at}: an integer beyond 64 bits")
        elif value is not None and not isinstance(value, int | float):
            raise ValidationError(f"{at}: expected a string, number, boolean or null, got {type(value).__name__}")
    return tags


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationError(f"body: duplicate key {shown(key)} in one object (send each field once)")
        out[key] = value
    return out


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise ValidationError(f"body: an integer of {len(digits.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(digits)


@dataclass
class _Shape:
    depth: int = 0
    keys: int = 0
    colons: int = 0  # ':' inside decoded strings (keys and values)


def _shape(value: Any, count_colons: bool) -> _Shape:
    """Depth, keys and (optionally) colons in strings of a decoded document: one walk, a level of
    nesting at a time (orjson bounds nesting at 1024 and the exact path at the recursion limit, so
    this terminates). Each level is a few C-level passes (types, lengths, values), not a Python
    step per value: a level without containers ends the walk."""
    shape, level, depth = _Shape(), [value], 1
    while level:
        kinds = set(map(type, level))
        if dict not in kinds and list not in kinds:
            break
        shape.depth = depth
        if kinds == {dict}:
            dicts, lists = level, []
        elif kinds == {list}:
            dicts, lists = [], level
        else:
            dicts, lists = [x for x in level if type(x) is dict], [x for x in level if type(x) is list]
        shape.keys += sum(map(len, dicts))
        level = list(chain(chain.from_iterable(map(dict.values, dicts)), chain.from_iterable(lists)))
        if count_colons:
            shape.colons += sum(k.count(":") for x in dicts for k in x)
            shape.colons += sum(x.count(":") for x in level if type(x) is str)
        depth += 1
    return shape


def _exact(raw: bytes, where: str, max_depth: int) -> Any:
    """Python's json with duplicate keys refused and integer literals bounded (small bodies only)."""
    if len(raw) > _SLOW_PATH_MAX:
        raise ValidationError(f"{where}: not valid JSON for a body over {_SLOW_PATH_MAX // 2**20} MiB (NaN, "
                              "Infinity and numbers beyond the float range are accepted only in smaller bodies)")
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicates, parse_int=_parse_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{where}: not valid JSON ({shown(str(exc), 120)[1:-1]})") from None
    except RecursionError:
        raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels") from None


def parse_json(raw: bytes, where: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The one JSON body parser of every front end (REST bodies, ``/keys``, MQTT payloads). Refuses
    (422, naming ``where``) bodies that are not JSON, nested deeper than ``max_depth``, repeat a key
    within one object (JSON leaves that undefined; silently taking the last value would hide a
    client bug), or hold an integer literal of more than :data:`MAX_INT_DIGITS` digits.

    Linear time in the body's size whatever it holds (no regex over the raw text: escaped quotes
    once made a depth check quadratic). orjson decodes (it bounds nesting at 1024 natively); one
    iterative walk of the result measures depth and counts keys. No key repeated when every key in
    the text is followed by exactly one structural ``:`` — the text's colons minus the colons inside
    its strings (decoded, less those escaped as ``\\u003a``) equal the decoded keys. Otherwise a key
    repeated, and Python's json names it (bodies up to 1 MiB), as it reads NaN, Infinity and numbers
    orjson cannot hold."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:
            raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels") from None
        token = raw[exc.pos:exc.pos + 1]
        if token and token in b"-0123456789NI":  # a number or constant orjson refuses: the exact path names it
            value = _exact(raw, where, max_depth)
            if _shape(value, False).depth > max_depth:
                raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels") from None
            return value
        raise ValidationError(f"{where}: not valid JSON ({exc.msg} at character {exc.pos})") from None
    shape = _shape(value, False)
    if shape.depth > max_depth:
        raise ValidationError(f"{where}: JSON nested deeper than {max_depth} levels")
    colons = raw.count(b":")
    if colons == shape.keys:  # the common case: no colon inside a string
        return value
    # Structural colons = the text's colons - those inside strings (decoded colons, less the ones
    # written as \u003a escapes).
    escaped = raw.count(b"\\u003a") + raw.count(b"\\u003A")
    if colons - _shape(value, True).colons + escaped == shape.keys:
        return value
    if len(raw) > _SLOW_PATH_MAX:  # a key repeated: too large a body to find which by the exact path
        raise ValidationError(f"{where}: a key repeats within one object (send each field once)")
    return _exact(raw, where, max_depth)  # a key repeated: name it


async def parse_json_off_loop(raw: bytes, where: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """:func:`parse_json` for async front ends: bodies over 64 KiB are parsed in a worker thread so a
    large one (up to the 8 MiB body limit) never holds the event loop."""
    if len(raw) <= _OFF_LOOP_BYTES:
        return parse_json(raw, where, max_depth)
    return await asyncio.to_thread(parse_json, raw, where, max_depth)


@dataclass(frozen=True)
class ReadingSpec:
    """What a model needs of a reading. ``ranges`` maps field -> [low, high] (plausible values)."""

    required: tuple[str, ...]
    ranges: Mapping[str, Sequence[float]] = field(default_factory=dict)
    max_readings: int = 500

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Column indices (into MEASUREMENT_FIELDS) of the required fields and their plausible
        [low, high] (infinite where no range is given), as arrays for the validator's fast path."""
        idx = np.array([_INDEX[n] for n in self.required if n in _INDEX], dtype=np.int64)
        unbounded = (-math.inf, math.inf)
        ranges = [self.ranges.get(n) or unbounded for n in self.required if n in _INDEX]
        return idx, np.array([r[0] for r in ranges], dtype=np.float64), np.array([r[1] for r in ranges],
                                                                                 dtype=np.float64)


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
        raise ValidationError(f"{where}: {shown(v)} is not a number")
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
            raise ValidationError(f"{where}.{clip(str(key))}: unknown field (allowed: cycle, setting_1..setting_3, "
                                  "s1..s21)")
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
    """Fast path for the common case — every reading a dict of the same known fields (as clients
    send them) holding finite numbers (or null in fields the model does not need), required values
    in range, cycles all given and increasing or all absent. Returns None at the first sign of
    anything else, so the exact checks in :func:`validate_sequence` run and raise their precise
    message; a sequence accepted here is accepted there with the same values. Array work, not a
    Python call per value: it makes the valid case ~20x cheaper than the exact checks (per-value
    Python calls dominated the cost of a serving request)."""
    if set(map(type, readings)) != {dict}:
        return None
    orders = set(map(tuple, readings))  # the fields of each reading, in order
    keys = next(iter(orders))
    if not _ALLOWED.issuperset(keys):
        return None
    if len(orders) == 1:  # as clients send them: the same fields in the same order
        flat = list(chain.from_iterable(map(dict.values, readings)))
    elif all(r.keys() == readings[0].keys() for r in readings):
        flat = [r[k] for r in readings for k in keys]
    else:
        return None
    if not set(map(type, flat)) <= _PLAIN:  # bool, str, nested ...: the exact path names it
        return None
    try:
        try:
            given = np.fromiter(flat, np.float64, len(flat))
        except TypeError:  # nulls: np.array reads None as NaN
            given = np.array(flat, dtype=np.float64)
    except (OverflowError, ValueError):  # an int too large for a float
        return None
    # Only nulls may be NaN here: a NaN or infinity sent as a number is refused by the exact path.
    if not np.isfinite(given).all() and (np.isinf(given).any() or int(np.isnan(given).sum()) != flat.count(None)):
        return None
    given = given.reshape(len(readings), len(keys))
    rows = np.full((len(readings), len(MEASUREMENT_FIELDS)), np.nan)
    at = [i for i, k in enumerate(keys) if k != "cycle"]
    rows[:, [_INDEX[keys[i]] for i in at]] = given[:, at]
    idx, lo, hi = spec.bounds
    if len(idx) != len(spec.required):  # a field no reading can hold: the exact path says it is missing
        return None
    required = rows[:, idx]
    if not ((required >= lo) & (required <= hi)).all():  # NaN (missing) fails both comparisons
        return None
    if "cycle" not in keys:
        return ValidSequence(rows, None)
    col = given[:, keys.index("cycle")]
    absent = np.isnan(col)
    if absent.all():  # null on every reading: no cycles, as if not given
        return ValidSequence(rows, None)
    # Strictly below 2**53: an int cycle beyond it may have been rounded down by the float conversion.
    if absent.any() or not ((col >= 0) & (col < _MAX_CYCLE) & (col == np.floor(col))).all():
        return None
    cyc = col.astype(np.int64)
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
