"""The drift report on disk: ``drift.json`` and ``drift.html`` (tables, life stages and, with
matplotlib, histograms of reference vs current embedded as base64 PNGs)."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prognos.lifecycle.drift.statistics import finite
from prognos.lifecycle.drift.verdict import DriftReport, DriftSample, QuantityDrift
from prognos.reference import Distribution, ReferenceProfile

__all__ = ["ReportFiles", "write_report"]

log = logging.getLogger("prognos.lifecycle")


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    plots: bool  # False when matplotlib is not installed (the report has tables only)


def write_report(report: DriftReport, reference: ReferenceProfile | None, sample: DriftSample, out: Path
                 ) -> ReportFiles:
    """Write ``drift.json`` and ``drift.html`` (tables and, with matplotlib, histograms of reference
    vs current embedded as base64 PNGs) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "drift.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    images: list[tuple[str, str]] = []
    plots = False
    if reference is not None and len(sample):
        try:
            images = _plots(reference, sample, report)
            plots = True
        except ImportError:
            log.warning("matplotlib is not installed: the drift report has no plots")
    html_path = out / "drift.html"
    html_path.write_text(_html(report, images))
    return ReportFiles(html_path, json_path, plots)


def _plots(reference: ReferenceProfile, sample: DriftSample, report: DriftReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drifted = {(q.kind, q.name) for q in [*report.features, *report.raw] if q.drifted}
    at = (reference.stages.index(sample.cycles) if report.stratified and reference.stages is not None
          and sample.cycles is not None else np.full(len(sample), -1))
    groups: list[tuple[str, str, list[tuple[str, Distribution, np.ndarray]]]] = [
        ("Model features (after preprocessing, z-score units)", "feature",
         [(n, reference.features[n], sample.features[:, i]) for i, n in enumerate(sample.feature_names)
          if n in reference.features]),
        ("Raw reading fields (C-MAPSS units)", "raw",
         [(n, reference.raw[n], sample.raw[:, i]) for i, n in enumerate(sample.raw_names) if n in reference.raw]),
        ("Predicted RUL (cycles)", "prediction", [("predicted_rul", reference.prediction, sample.predictions)]),
    ]
    images = []
    for title, kind, items in groups:
        if not items:
            continue
        cols = min(4, len(items))
        rows = math.ceil(len(items) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, (name, ref, cur) in zip(axes.ravel(), items, strict=False):
            edges = np.asarray(ref.hist_edges)
            x = finite(cur)
            width = edges[1] - edges[0]
            lo, hi = min(edges[0], x.min() if len(x) else edges[0]), max(edges[-1], x.max() if len(x) else edges[-1])
            # The reference the sample is judged against: training rows at the sample's life stages.
            matched = reference.matched(kind, name, at) or ref
            ax.stairs(np.diff(matched.cdf(edges)) / width, edges, fill=True, alpha=0.45, label="reference")
            if len(x):
                bins = np.arange(lo, hi + width, width) if (hi - lo) / width <= 400 else 60
                ax.hist(x, bins=bins, density=True, histtype="step", linewidth=1.4, label="current")
            ax.set_title(name + ("  DRIFT" if (kind, name) in drifted or (kind == "prediction" and report.prediction
                                                                      and report.prediction.drifted) else ""),
                         fontsize=9, color="#b00020" if (kind, name) in drifted else "black")
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(items):]:
            ax.axis("off")
        axes.ravel()[0].legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        images.append((title, base64.b64encode(buf.getvalue()).decode("ascii")))
    return images


def _table(rows: Iterable[QuantityDrift]) -> str:
    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if math.isfinite(v) else "-"

    body = "".join(
        f"<tr{' class=drift' if q.drifted else ''}><td>{html.escape(q.name)}</td><td>{q.n}</td>"
        f"<td>{num(q.psi, '.3f')}</td><td>{num(q.ks, '.3f')}</td><td>{num(q.ks_pvalue, '.2g')}</td>"
        f"<td>{num(q.reference_mean, '.4g')} ± {num(q.reference_std, '.3g')}</td><td>{num(q.mean, '.4g')}</td>"
        f"<td>{'yes' if q.drifted else ''}</td></tr>" for q in rows)
    return ("<table><thead><tr><th>name</th><th>n</th><th>PSI</th><th>KS</th><th>KS p</th><th>reference mean ± sd</th>"
            f"<th>current mean</th><th>drifted</th></tr></thead><tbody>{body}</tbody></table>")


def _html(report: DriftReport, images: list[tuple[str, str]]) -> str:
    t = report.thresholds
    verdict = {"drift": "DRIFT DETECTED", "ok": "no drift", "insufficient": "not enough data",
               "no_reference": "no reference profile"}[report.status]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>prognos drift report</title><style>"
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
        "tr.drift{background:#fde2e4}.verdict{font-size:1.4em;font-weight:bold}img{max-width:100%}</style></head><body>",
        f"<h1>Drift report: model {html.escape(report.model_version)}</h1>",
        f"<p class=verdict>{verdict}</p><p>{html.escape(report.message)}</p>",
        f"<p>Data: {html.escape(report.source)}; {report.n_samples} samples from "
        f"{'an unknown number of' if report.n_engines is None else report.n_engines} engines; "
        f"computed {report.computed_at}.</p>",
        f"<p>A quantity drifted when PSI &gt; {t.psi:g} and the KS gap &gt; {t.ks_effect:g} with p &lt; "
        f"{t.ks_pvalue:g}; the model drifted when at least {report.min_drifted} of its features did "
        f"({t.min_share:.0%}). At least {t.min_samples} samples from {t.min_engines} engines are needed. "
        + ("The reference is the training data at the sample's own life stages (engine cycles), mixed in the "
           "sample's proportions." if report.stratified else "The reference is all training windows (the "
           "sample's life stages are unknown).") + "</p>",
    ]
    if report.stages:
        rows = "".join(f"<tr><td>{html.escape(s.stage)}</td><td>{s.n}</td><td>{s.share:.1%}</td>"
                       f"<td>{s.reference_n}</td><td>{'-' if s.n_drifted is None else s.n_drifted}</td>"
                       f"<td>{'-' if s.max_ks is None else format(s.max_ks, '.3f')}</td></tr>" for s in report.stages)
        parts += ["<h2>Life stages</h2><table><thead><tr><th>stage</th><th>samples</th><th>share</th>"
                  "<th>training rows</th><th>features drifted within</th><th>max KS within</th></tr></thead>"
                  f"<tbody>{rows}</tbody></table>"]
    if report.features:
        parts += ["<h2>Model features</h2>", _table(report.features)]
    if report.prediction is not None:
        parts += ["<h2>Predictions</h2>", _table([report.prediction])]
    if report.raw:
        parts += ["<h2>Raw reading fields</h2>", _table(report.raw)]
    for title, png in images:
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
