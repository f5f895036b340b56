"""Test helpers: write generated fleets in NASA's text layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from prognos.data.synthetic import cmapss_text, write_subset

__all__ = ["cmapss_text", "rul_values", "write_cmapss_dir"]


def write_cmapss_dir(root: Path, subset: str = "FD001", n_train: int = 24, n_test: int = 10, seed: int = 0) -> Path:
    """A folder laid out like NASA's: train_, test_ (truncated engines) and RUL_ files (valid truth)."""
    return write_subset(root, subset, n_train=n_train, n_test=n_test, seed=seed)


def rul_values(root: Path, subset: str = "FD001") -> np.ndarray:
    return np.loadtxt(root / f"RUL_{subset}.txt")
