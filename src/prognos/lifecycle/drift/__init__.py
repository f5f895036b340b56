"""Drift: how far the data a model sees now has moved from the data it was trained on.

Per model input feature (after preprocessing), per raw required reading field and for the
predictions, a current sample is compared with the bundle's reference profile
(:mod:`prognos.reference`) taken at the sample's own life stages. One module per concept:

* :mod:`.statistics` — PSI and the KS test against a reference distribution;
* :mod:`.verdict` — thresholds, per-quantity and per-stage results, the model's verdict;
* :mod:`.samples` — a current sample from a readings file or from captured requests;
* :mod:`.capture` — the server's sampled, bounded capture of served requests (JSONL, rotated);
* :mod:`.report` — ``drift.json`` and ``drift.html``.
"""

from __future__ import annotations

from prognos.lifecycle.drift.capture import CAPTURE_FILE, CaptureRecord, DriftCapture, read_capture
from prognos.lifecycle.drift.report import ReportFiles, write_report
from prognos.lifecycle.drift.samples import sample_from_readings, sample_from_records
from prognos.lifecycle.drift.statistics import KsResult, kolmogorov_pvalue, ks_test, psi
from prognos.lifecycle.drift.verdict import (
    DriftReport,
    DriftSample,
    DriftThresholds,
    QuantityDrift,
    StageDrift,
    compute_drift,
    no_reference_report,
)

__all__ = [
    "CAPTURE_FILE",
    "CaptureRecord",
    "DriftCapture",
    "DriftReport",
    "DriftSample",
    "DriftThresholds",
    "KsResult",
    "QuantityDrift",
    "ReportFiles",
    "StageDrift",
    "compute_drift",
    "kolmogorov_pvalue",
    "ks_test",
    "no_reference_report",
    "psi",
    "read_capture",
    "sample_from_readings",
    "sample_from_records",
    "write_report",
]
