"""Current samples for a drift report: from a readings file (every row of every engine, as the
model would see it streamed) or from the server's captured requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from prognos.lifecycle.drift.capture import CaptureRecord
from prognos.lifecycle.drift.verdict import DriftSample

if TYPE_CHECKING:
    from prognos.data.cmapss import Readings
    from prognos.serving.predictor import Predictor

__all__ = ["sample_from_readings", "sample_from_records"]


def sample_from_readings(predictor: Predictor, readings: Readings, *, max_rows: int = 20000, seed: int = 0,
                         source: str = "") -> DriftSample:
    """Every row of every engine in ``readings`` as the model would see it streamed cycle by cycle
    (features smoothed over the engine's history), with the model's prediction at that row, its
    cycle and engine. At most ``max_rows`` rows, drawn uniformly (seeded). Values are not
    range-checked: out-of-range data is exactly what a drift report should show."""
    pipeline = predictor.pipeline
    cols = pipeline.input_columns
    feats, raws, windows, cycles, engines = [], [], [], [], []
    for e in readings.engines():
        feats.append(pipeline.transform_engine(e.values))
        raws.append(e.values[:, cols])
        windows.append(e.values)
        cycles.append(e.cycles.astype(np.float64))
        engines.append(np.full(len(e), e.engine_id, dtype=object))
    features = np.concatenate(feats) if feats else np.zeros((0, pipeline.n_features))
    raw = np.concatenate(raws) if raws else np.zeros((0, len(cols)))
    n = len(features)
    keep = np.arange(n)
    if n > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    predictions = np.empty(len(keep))
    start, pos = 0, 0
    # The served prediction (model, then age correction) on the window ending at each kept row.
    for values, engine_cycles in zip(windows, cycles, strict=True):
        stop = start + len(values)
        rows = keep[(keep >= start) & (keep < stop)] - start
        if len(rows):
            x, age = pipeline.engine_windows(values)[rows], engine_cycles[rows]
            for i in range(0, len(x), 1024):
                chunk = x[i:i + 1024]
                predictions[pos:pos + len(chunk)] = predictor.correction.apply(predictor.predict_windows(chunk),
                                                                               age[i:i + 1024])
                pos += len(chunk)
        start = stop
    all_cycles = np.concatenate(cycles) if cycles else np.zeros(0)
    all_engines = np.concatenate(engines) if engines else np.zeros(0, dtype=object)
    return DriftSample(list(pipeline.sensors_ or []), features[keep], list(pipeline.required_fields), raw[keep],
                       predictions, source or f"{readings.source} ({len(keep)} of {n} rows)",
                       all_cycles[keep], all_engines[keep])


def sample_from_records(predictor: Predictor, records: Sequence[CaptureRecord], source: str = "") -> DriftSample:
    """Captured records of ``predictor``'s model as a sample (records of other versions are skipped)."""
    mine = [r for r in records if r.model_version == predictor.version]
    nf, nr = predictor.pipeline.n_features, len(predictor.pipeline.required_fields)
    engines = np.array([r.engine for r in mine], dtype=object)
    return DriftSample(
        list(predictor.pipeline.sensors_ or []),
        np.array([r.features for r in mine], dtype=np.float64).reshape(len(mine), nf),
        list(predictor.pipeline.required_fields),
        np.array([r.raw for r in mine], dtype=np.float64).reshape(len(mine), nr),
        np.array([r.prediction for r in mine], dtype=np.float64),
        source or f"{len(mine)} captured requests",
        np.array([np.nan if r.cycle is None else r.cycle for r in mine], dtype=np.float64),
        # Records written before engines were captured say nothing about how many engines they cover.
        engines if all(r.engine for r in mine) else None,
    )
