"""Test helpers: write generated fleets in NASA's text layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prognos.data.cmapss import Readings
from prognos.data.synthetic import synthetic_fleet


def cmapss_text(readings: Readings) -> str:
    lines = []
    for eid, c, row in zip(readings.engine_ids, readings.cycles, readings.values, strict=True):
        lines.append(" ".join([str(eid), str(int(c)), *(f"{v:.4f}" for v in row)]))
    return "\n".join(lines) + "\n"


def write_cmapss_dir(root: Path, subset: str = "FD001", n_train: int = 24, n_test: int = 10, seed: int = 0) -> Path:
    """A folder laid out like NASA's: train_, test_ (truncated engines) and RUL_ files."""
    root.mkdir(parents=True, exist_ok=True)
    train = synthetic_fleet(n_train, seed=seed)
    full = synthetic_fleet(n_test, seed=seed + 100)
    test = synthetic_fleet(n_test, seed=seed + 100, truncate=True)
    (root / f"train_{subset}.txt").write_text(cmapss_text(train))
    (root / f"test_{subset}.txt").write_text(cmapss_text(test))
    rul = []
    for e_full, e_cut in zip(full.engines(), test.engines(), strict=True):
        rul.append(int(e_full.cycles[-1] - e_cut.cycles[-1]))
    (root / f"RUL_{subset}.txt").write_text("\n".join(map(str, rul)) + "\n")
    return root


def rul_values(root: Path, subset: str = "FD001") -> np.ndarray:
    return np.loadtxt(root / f"RUL_{subset}.txt")
