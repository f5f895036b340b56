"""The models page's counts: a bundle says how many engines and how many windows it was validated on."""

from __future__ import annotations

from pathlib import Path

from prognos.bundle import read_bundle
from prognos.data.cmapss import Readings


def test_engines_and_windows_are_counted_apart(tiny_bundle: Path, synthetic_readings: Readings) -> None:
    metrics = read_bundle(tiny_bundle).manifest.validation_metrics
    assert metrics["n_engines"] == synthetic_readings.n_engines
    assert metrics["n_windows"] > 10 * metrics["n_engines"]  # one window per cycle of every engine
