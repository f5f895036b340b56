"""Loading run-to-failure data in the NASA C-MAPSS layout, from a folder or a (nested) zip.

The layout: whitespace-separated text, no header, 26 columns per row — unit number, cycle,
operational settings 1-3, sensors 1-21. ``train_FD00x.txt`` runs each engine to failure,
``test_FD00x.txt`` stops each engine some time before failure and ``RUL_FD00x.txt`` holds the
true remaining cycles after each test engine's last row, one line per engine.

CSV files with a header naming the fields (``engine_id`` or ``unit``, ``cycle``, ``setting_1``..,
``s1``..) are read too; absent channels become NaN and are rejected later only if a model needs them.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prognos.data.schema import CMAPSS_COLUMNS, MEASUREMENT_FIELDS
from prognos.errors import DataFormatError

__all__ = [
    "SUBSETS",
    "SYNTHETIC",
    "CmapssSubset",
    "EngineSeries",
    "Readings",
    "load_readings",
    "load_rul",
    "load_subset",
    "parse_readings_text",
    "subset_name",
]

SUBSETS: tuple[str, ...] = ("FD001", "FD002", "FD003", "FD004")
# Not NASA's: a generated fleet in the same layout (prognos.data.synthetic.write_subset; the demo's sample data).
SYNTHETIC = "SYNTHETIC"
_N_COLS = len(CMAPSS_COLUMNS)


@dataclass(frozen=True)
class EngineSeries:
    """One engine's readings in cycle order. ``values`` is (n_cycles, 24): settings then sensors."""

    engine_id: str
    cycles: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.cycles)


@dataclass(frozen=True)
class Readings:
    """Many engines' readings, rows grouped by engine, each engine's cycles strictly increasing.

    ``engine_ids`` (n,) str, ``cycles`` (n,) int64, ``values`` (n, 24) float64 in
    :data:`prognos.data.schema.MEASUREMENT_FIELDS` order (NaN where a CSV lacks a channel).
    """

    engine_ids: np.ndarray
    cycles: np.ndarray
    values: np.ndarray
    source: str = "<memory>"

    def __len__(self) -> int:
        return len(self.cycles)

    @property
    def n_engines(self) -> int:
        return len(self._bounds())

    def engines(self) -> Iterator[EngineSeries]:
        """Each engine in file order."""
        for eid, start, stop in self._bounds():
            yield EngineSeries(eid, self.cycles[start:stop], self.values[start:stop])

    def select(self, engine_ids: set[str]) -> Readings:
        mask = np.isin(self.engine_ids, list(engine_ids))
        return Readings(self.engine_ids[mask], self.cycles[mask], self.values[mask], self.source)

    def _bounds(self) -> list[tuple[str, int, int]]:
        ids = self.engine_ids
        if len(ids) == 0:
            return []
        change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        starts = np.concatenate(([0], change))
        stops = np.concatenate((change, [len(ids)]))
        return [(str(ids[s]), int(s), int(e)) for s, e in zip(starts, stops, strict=True)]


@dataclass(frozen=True)
class CmapssSubset:
    """One C-MAPSS subset: training engines, and test engines with their true RUL if known."""

    name: str
    train: Readings
    test: Readings | None
    rul: np.ndarray | None  # (n_test_engines,) true RUL after each test engine's last cycle
    rul_source: str | None


def subset_name(name: str) -> str:
    """Normalise ``fd001``/``1``/``FD001`` to ``FD001`` (and ``synthetic`` to ``SYNTHETIC``); reject anything else."""
    candidate = name.strip().upper()
    if candidate.isdigit():
        candidate = f"FD{int(candidate):03d}"
    if candidate not in (*SUBSETS, SYNTHETIC):
        raise DataFormatError(f"unknown subset {name!r}: expected one of {', '.join(SUBSETS)} (or {SYNTHETIC})")
    return candidate


_CHUNK_ROWS = 2048  # rows turned into floats at a time: a file's tokens never all exist as Python strings


def parse_readings_text(text: str | Iterable[str], source: str, lines_hint: int | None = None) -> Readings:
    """Parse C-MAPSS text (26 whitespace-separated columns) or a CSV with a header row. ``text``
    may be a stream of lines (an open text file, read once; ``lines_hint``: about how many lines it
    holds): memory is then the arrays of the result plus one chunk of :data:`_CHUNK_ROWS` rows,
    never the file's text, whatever its size."""
    if isinstance(text, str):
        lines_hint = text.count("\n") + 1
        text = io.StringIO(text)
    capacity = max(1, lines_hint or _CHUNK_ROWS)
    lines: Iterator[str] = iter(text)
    skipped = 0
    first = ""
    for line in lines:
        if line.strip():
            first = line
            break
        skipped += 1
    if not first:
        raise DataFormatError(f"{source}: file is empty")
    header = {t.strip().lower() for t in first.split(",")}
    if "," in first and header & {"cycle", "unit", "engine_id"}:
        return _parse_csv(itertools.chain([first], lines), source, _Chunks(capacity), skipped)
    return _parse_whitespace(itertools.chain([first], lines), source, _Chunks(capacity), skipped)


class _Chunks:
    """A file's rows as they are parsed, a chunk at a time, into arrays sized for the file's line
    count (pages of an array are resident only once written, so the unused tail costs nothing):
    memory peaks at the result plus one chunk, never at twice the result."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.ids: list[np.ndarray] = []
        self.cycles = np.empty(capacity, dtype=np.int64)
        self.values = np.empty((capacity, len(MEASUREMENT_FIELDS)), dtype=np.float64)
        self.line_no = np.empty(capacity, dtype=np.int64)

    def add(self, ids: np.ndarray, cycles: np.ndarray, values: np.ndarray, line_no: list[int]) -> None:
        n, k = self.n, len(cycles)
        if n + k > len(self.cycles):  # more rows than lines counted (lone CR separators): grow
            size = max(2 * len(self.cycles), n + k)
            self.cycles = np.resize(self.cycles, size)
            self.values = np.resize(self.values, (size, self.values.shape[1]))
            self.line_no = np.resize(self.line_no, size)
        self.ids.append(ids)
        self.cycles[n:n + k] = cycles
        self.values[n:n + k] = values
        self.line_no[n:n + k] = line_no
        self.n += k

    def readings(self, source: str) -> Readings:
        ids = np.concatenate(self.ids) if self.ids else np.array([], dtype=str)
        n = self.n
        readings = Readings(ids, self.cycles[:n], self.values[:n], source)
        _check_order(readings, self.line_no[:n], source)
        return readings


def _whitespace_chunk(rows: list[list[str]], line_no: list[int], source: str, out: _Chunks) -> None:
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        for parts, i in zip(rows, line_no, strict=True):
            for col, token in zip(CMAPSS_COLUMNS, parts, strict=True):
                try:
                    float(token)
                except ValueError:
                    raise DataFormatError(
                        f"{source}, line {i}, column {col}: {token[:40]!r} is not a number"
                    ) from None
        raise  # pragma: no cover - numpy and float() disagree only on exotic input
    bad = ~np.isfinite(table)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataFormatError(f"{source}, line {line_no[r]}, column {CMAPSS_COLUMNS[c]}: value is not finite")
    ids = table[:, :2]
    if np.any(ids != np.round(ids)) or np.any(ids < 0):
        r = int(np.flatnonzero(np.any((ids != np.round(ids)) | (ids < 0), axis=1))[0])
        raise DataFormatError(f"{source}, line {line_no[r]}: unit and cycle must be non-negative whole numbers")
    out.add(np.array([str(int(u)) for u in table[:, 0]]), table[:, 1].astype(np.int64), table[:, 2:].copy(),
            line_no)


def _parse_whitespace(lines: Iterable[str], source: str, chunks: _Chunks, skipped: int = 0) -> Readings:
    rows: list[list[str]] = []
    line_no: list[int] = []
    for i, line in enumerate(lines, start=1 + skipped):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != _N_COLS:
            raise DataFormatError(
                f"{source}, line {i}: expected {_N_COLS} columns "
                f"(unit, cycle, 3 settings, 21 sensors), found {len(parts)}"
            )
        rows.append(parts)
        line_no.append(i)
        if len(rows) == _CHUNK_ROWS:
            _whitespace_chunk(rows, line_no, source, chunks)
            rows, line_no = [], []
    if rows:
        _whitespace_chunk(rows, line_no, source, chunks)
    return chunks.readings(source)


def _parse_csv(lines: Iterable[str], source: str, chunks: _Chunks, skipped: int = 0) -> Readings:
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    id_col = next((c for c in ("engine_id", "unit") if c in header), None)
    first = 1 + skipped
    if id_col is None or "cycle" not in header:
        raise DataFormatError(f"{source}, line {first}: CSV header needs 'engine_id' (or 'unit') and 'cycle' columns")
    known = {"engine_id", "unit", "cycle", *MEASUREMENT_FIELDS}
    unknown = [h for h in header if h not in known]
    if unknown:
        raise DataFormatError(f"{source}, line {first}: unknown column {unknown[0][:40]!r}")
    pos = {name: header.index(name) for name in header}
    ids: list[str] = []
    cycles: list[int] = []
    values: list[list[float]] = []
    line_no: list[int] = []
    for i, row in enumerate(reader, start=first + 1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataFormatError(f"{source}, line {i}: expected {len(header)} columns, found {len(row)}")
        ids.append(row[pos[id_col]].strip())
        cycle_text = row[pos["cycle"]].strip()
        try:
            cycle = float(cycle_text)
        except ValueError:
            raise DataFormatError(f"{source}, line {i}, column cycle: {cycle_text[:40]!r} is not a number") from None
        if not math.isfinite(cycle) or cycle != int(cycle) or cycle < 0:
            raise DataFormatError(f"{source}, line {i}, column cycle: must be a non-negative whole number")
        cycles.append(int(cycle))
        out = []
        for name in MEASUREMENT_FIELDS:
            if name not in pos or row[pos[name]].strip() == "":
                out.append(math.nan)
                continue
            token = row[pos[name]].strip()
            try:
                v = float(token)
            except ValueError:
                raise DataFormatError(f"{source}, line {i}, column {name}: {token[:40]!r} is not a number") from None
            if not math.isfinite(v):
                raise DataFormatError(f"{source}, line {i}, column {name}: value is not finite")
            out.append(v)
        values.append(out)
        line_no.append(i)
        if len(values) == _CHUNK_ROWS:
            chunks.add(np.array(ids), np.array(cycles, dtype=np.int64), np.array(values, dtype=np.float64), line_no)
            ids, cycles, values, line_no = [], [], [], []
    if values:
        chunks.add(np.array(ids), np.array(cycles, dtype=np.int64), np.array(values, dtype=np.float64), line_no)
    if not chunks.n:
        raise DataFormatError(f"{source}: no data rows after the header")
    return chunks.readings(source)


def _check_order(readings: Readings, line_no: Sequence[int] | np.ndarray, source: str) -> None:
    ids, cycles = readings.engine_ids, readings.cycles
    same = ids[1:] == ids[:-1]
    back = np.flatnonzero(same & (cycles[1:] <= cycles[:-1]))
    if len(back):
        r = int(back[0]) + 1
        raise DataFormatError(
            f"{source}, line {line_no[r]}: engine {ids[r]} cycle {cycles[r]} does not increase "
            f"(previous row has cycle {cycles[r - 1]})"
        )
    seen: set[str] = set()
    for r in np.concatenate(([0], np.flatnonzero(~same) + 1)):
        eid = str(ids[r])
        if eid in seen:
            raise DataFormatError(
                f"{source}, line {line_no[int(r)]}: rows of engine {eid} are not contiguous"
            )
        seen.add(eid)


def load_readings(path: Path) -> Readings:
    """Read one C-MAPSS-format or CSV file. Raises :class:`DataFormatError` naming file and line."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory, expected a data file")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise DataFormatError(f"{path}: not a text file") from None
    return parse_readings_text(text, str(path))


def load_rul(path: Path, n_engines: int | None = None) -> np.ndarray:
    """Read a RUL file: one non-negative whole number per line, one line per test engine."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such RUL file")
    return _parse_rul(path.read_text(), str(path), n_engines)


def _parse_rul(text: str, source: str, n_engines: int | None) -> np.ndarray:
    values: list[float] = []
    for i, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token:
            continue
        try:
            v = float(token)
        except ValueError:
            raise DataFormatError(f"{source}, line {i}: {token!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise DataFormatError(f"{source}, line {i}: RUL must be a non-negative number, got {token}")
        values.append(v)
    if n_engines is not None and len(values) != n_engines:
        raise DataFormatError(
            f"{source}: has {len(values)} RUL values but the test file has {n_engines} engines"
        )
    return np.array(values, dtype=np.float64)


def load_subset(source: Path, subset: str, *, with_test: bool = True, rul_file: Path | None = None) -> CmapssSubset:
    """Load ``train``, and optionally ``test`` and ``RUL``, of one subset from a folder or a zip.

    The RUL file is ``rul_file`` when given, else ``RUL_<subset>.txt`` beside the data if present.
    """
    name = subset_name(subset)
    source = Path(source)
    files = _Files(source)
    train = parse_readings_text(files.read(f"train_{name}.txt"), files.label(f"train_{name}.txt"))
    test = rul = None
    rul_source = None
    if with_test and files.has(f"test_{name}.txt"):
        test = parse_readings_text(files.read(f"test_{name}.txt"), files.label(f"test_{name}.txt"))
        if rul_file is not None:
            rul = load_rul(rul_file, test.n_engines)
            rul_source = str(rul_file)
        elif files.has(f"RUL_{name}.txt"):
            rul_source = files.label(f"RUL_{name}.txt")
            rul = _parse_rul(files.read(f"RUL_{name}.txt"), rul_source, test.n_engines)
    elif rul_file is not None:
        raise DataFormatError(f"{source}: a RUL file was given but there is no test_{name}.txt")
    return CmapssSubset(name, train, test, rul, rul_source)


class _Files:
    """Files by base name in a folder, a zip, or zips nested inside a zip (as NASA ships them)."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._members: dict[str, bytes] = {}
        if not source.exists():
            raise DataFormatError(f"{source}: no such directory or zip file")
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise DataFormatError(f"{source}: not a directory or a zip archive")
            with zipfile.ZipFile(source) as zf:
                self._scan_zip(zf, depth=0)

    def _scan_zip(self, zf: zipfile.ZipFile, depth: int) -> None:
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            if base.lower().endswith(".zip") and depth < 3:
                with zipfile.ZipFile(io.BytesIO(zf.read(info))) as inner:
                    self._scan_zip(inner, depth + 1)
            elif base.endswith(".txt"):
                self._members.setdefault(base, zf.read(info))

    def has(self, base: str) -> bool:
        if self.source.is_dir():
            return (self.source / base).is_file()
        return base in self._members

    def label(self, base: str) -> str:
        return str(self.source / base) if self.source.is_dir() else f"{self.source}!{base}"

    def read(self, base: str) -> str:
        if not self.has(base):
            raise DataFormatError(f"{self.source}: {base} not found")
        raw = (self.source / base).read_bytes() if self.source.is_dir() else self._members[base]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
