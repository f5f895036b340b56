"""Readings as clients send them (JSON objects), from the synthetic fleet."""

from __future__ import annotations

from typing import Any

import numpy as np

from prognos.data.cmapss import EngineSeries
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.synthetic import synthetic_fleet


def reading_dicts(engine: EngineSeries) -> list[dict[str, Any]]:
    return [{"cycle": int(c), **{f: float(v) for f, v in zip(MEASUREMENT_FIELDS, row, strict=True)
                                 if not np.isnan(v)}}
            for c, row in zip(engine.cycles, engine.values, strict=True)]


def engine_readings(seed: int = 7, index: int = 0) -> list[dict[str, Any]]:
    """One synthetic run-to-failure engine's readings (its last cycle is its failure)."""
    return reading_dicts(list(synthetic_fleet(index + 1, seed=seed).engines())[index])
