"""The server's capture of served requests for drift: a sampled, bounded ring buffer, persisted as
JSONL under ``<data_dir>/drift`` with one rotated generation."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from prognos.config import Settings
    from prognos.data.validation import ValidSequence
    from prognos.serving.predictor import Predictor
    from prognos.serving.service import ServedPrediction

__all__ = ["CAPTURE_FILE", "CaptureRecord", "DriftCapture", "read_capture"]

CAPTURE_FILE = "capture.jsonl"
_MAX_PER_CALL = 16


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request: the last row of its feature window, its raw reading and the answer.
    ``t`` is the capture time (UNIX seconds); ``engine`` the engine id and ``cycle`` the engine
    cycle of the last reading (its life stage; ``None`` when the request carried no cycles).
    Lines written before engine and cycle were captured read back with ``""`` and ``None``."""

    t: float
    model_version: str
    features: list[float]
    raw: list[float]
    prediction: float
    engine: str = ""
    cycle: int | None = None

    def to_json(self) -> str:
        return json.dumps({"t": round(self.t, 3), "model_version": self.model_version,
                           "features": [round(v, 6) for v in self.features],
                           "raw": [round(v, 6) for v in self.raw], "prediction": round(self.prediction, 4),
                           "engine": self.engine, "cycle": self.cycle}, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> CaptureRecord:
        d = json.loads(line)
        cycle = d.get("cycle")
        return cls(float(d["t"]), str(d["model_version"]), [float(v) for v in d["features"]],
                   [float(v) for v in d["raw"]], float(d["prediction"]), str(d.get("engine", "")),
                   None if cycle is None else int(cycle))


class DriftCapture:
    """Samples served predictions at ``rate`` into a ring buffer of ``buffer_size`` records.

    :meth:`observe` is a :class:`~prognos.serving.service.PredictionService` observer: it runs on
    the request path, so it only draws a random number per prediction and, for the sampled few,
    takes the window's last feature row (O(window) work, no I/O). :meth:`flush` (called by the
    server's drift job, off the event loop) appends new records to ``<directory>/capture.jsonl``;
    past ``max_rows`` lines the file rotates to ``capture.1.jsonl`` (one old generation is kept),
    so the disk holds at most 2 x ``max_rows`` records.
    """

    def __init__(self, rate: float, buffer_size: int, directory: Path | None = None, max_rows: int = 0,
                 seed: int | None = None) -> None:
        self.rate = rate
        self.buffer: deque[CaptureRecord] = deque(maxlen=buffer_size)
        self.directory = directory if max_rows > 0 else None
        self.max_rows = max_rows
        self.captured = 0
        self._pending: deque[CaptureRecord] = deque(maxlen=buffer_size)  # not yet on disk
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._file_rows: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftCapture:
        return cls(settings.drift_sample_rate, settings.drift_buffer_size, settings.data_dir / "drift",
                   settings.drift_capture_max_rows)

    def observe(self, predictor: Predictor, engine_ids: Sequence[str], seqs: Sequence[ValidSequence],
                served: Sequence[ServedPrediction]) -> None:
        if self.rate <= 0 or not seqs:
            return
        # At most _MAX_PER_CALL per call: a 1000-engine batch must not do 100 feature transforms inline.
        picked = np.flatnonzero(self._rng.random(len(seqs)) < self.rate)[:_MAX_PER_CALL].tolist()
        if not picked:
            return
        cols = predictor.pipeline.input_columns
        now = time.time()
        for i in picked:
            seq = seqs[i]
            values = seq.values
            # Features over the request's own readings, as the model saw them (smoothing starts at
            # its first reading); only the last row is the state the prediction is about.
            row = predictor.pipeline.transform_engine(values[-predictor.history_readings:])[-1]
            cycle = None if seq.cycles is None or not len(seq.cycles) else int(seq.cycles[-1])
            rec = CaptureRecord(now, predictor.version, [float(v) for v in row],
                                [float(v) for v in values[-1, cols]], float(served[i].prediction.rul),
                                str(engine_ids[i]) if i < len(engine_ids) else "", cycle)
            with self._lock:
                self.buffer.append(rec)
                self._pending.append(rec)
                self.captured += 1

    def records(self, model_version: str | None = None) -> list[CaptureRecord]:
        with self._lock:
            recs = list(self.buffer)
        return [r for r in recs if model_version is None or r.model_version == model_version]

    def flush(self) -> int:
        """Append records captured since the last flush to the JSONL file (blocking I/O)."""
        if self.directory is None:
            with self._lock:
                self._pending.clear()
            return 0
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        if not pending:
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / CAPTURE_FILE
        if self._file_rows is None:
            self._file_rows = _count_lines(path)
        if self._file_rows + len(pending) > self.max_rows and self._file_rows:
            path.replace(self.directory / "capture.1.jsonl")
            self._file_rows = 0
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(r.to_json() + "\n" for r in pending))
        self._file_rows += len(pending)
        return len(pending)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def read_capture(directory: Path, *, model_version: str | None = None, since: float | None = None
                 ) -> list[CaptureRecord]:
    """Records a server persisted under ``directory`` (oldest first), optionally of one model
    version and captured at or after ``since`` (UNIX seconds). Unreadable lines are skipped."""
    out: list[CaptureRecord] = []
    for name in ("capture.1.jsonl", CAPTURE_FILE):
        path = Path(directory) / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = CaptureRecord.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash mid-write
            if (model_version is None or rec.model_version == model_version) and (since is None or rec.t >= since):
                out.append(rec)
    return out
