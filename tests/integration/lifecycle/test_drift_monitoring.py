"""Drift monitoring end to end.

* A real ``prognos serve`` captures served requests; its periodic drift job stays quiet on
  in-distribution traffic, flags shifted traffic (``/api/v1/models/drift``, Prometheus gauges, a
  ``drift`` alert in the fleet app) and ``prognos drift report --since`` reads what it captured.
* The issue's must-show on the real data (skipped without C-MAPSS): an FD001 model fed FD002 or
  FD003 test data is flagged; FD001 test data is not.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prognos.bundle import read_bundle
from prognos.data.schema import MEASUREMENT_FIELDS
from tests.integration.lifecycle.server import clean_env, cli, serve, wait_for


def requests(bundle: Path, n: int, seed: int = 0, history: int = 40) -> list[list[dict[str, Any]]]:
    """``n`` request bodies (``history`` readings each) of synthetic engines — the generator the tiny
    bundle was trained on — ending at stages spread uniformly over the engines' lives, as a fleet's
    live traffic does (a fleet of engines all in their first cycles would rightly look drifted)."""
    from prognos.data.synthetic import synthetic_fleet

    fields = read_bundle(bundle).manifest.input_fields
    cols = [MEASUREMENT_FIELDS.index(f) for f in fields]
    engines = list(synthetic_fleet(12, seed=21).engines())
    rng = np.random.default_rng(seed)
    bodies = []
    for i in range(n):
        e = engines[i % len(engines)]
        end = int(rng.integers(1, len(e) + 1))
        rows = range(max(0, end - history), end)
        bodies.append([{"cycle": int(e.cycles[j]),
                        **{f: round(float(e.values[j, c]), 4) for f, c in zip(fields, cols, strict=True)}}
                       for j in rows])
    return bodies


def shifted(bundle: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every model input moved by 40 % of its training span: still inside the plausible ranges the
    validator enforces (training range +- half its span), far outside the training distribution."""
    ranges = read_bundle(bundle).manifest.input_ranges
    out = []
    for r in rows:
        moved = dict(r)
        for f, (lo, hi) in ranges.items():
            moved[f] = round(r[f] + 0.2 * (hi - lo), 4)  # (hi - lo) is twice the training span
        out.append(moved)
    return out


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def test_server_captures_requests_and_flags_shifted_traffic(tiny_bundle: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, PROGNOS_DRIFT_SAMPLE_RATE="1", PROGNOS_DRIFT_INTERVAL_S="0.3",
                    PROGNOS_DRIFT_MIN_SAMPLES="40", PROGNOS_DRIFT_BUFFER_SIZE="60", PROGNOS_CACHE_SIZE="0")
    started = datetime.now(UTC).isoformat()
    with serve(tmp_path, env, "--bundle", str(tiny_bundle)) as server, server.client() as client:
        version = read_bundle(tiny_bundle).version
        for i, rows in enumerate(requests(tiny_bundle, 60)):
            r = client.post("/api/v1/predict", json={"engine_id": f"ok{i}", "sensor_data": rows})
            assert r.status_code == 200, r.text

        def report() -> dict[str, Any]:
            body: dict[str, Any] = client.get("/api/v1/models/drift").json()
            return body

        wait_for(lambda: report().get("n_samples", 0) >= 60, "the drift job to see the in-distribution sample")
        quiet = report()
        assert quiet["status"] == "ok" and quiet["model_version"] == version, quiet
        page = client.get("/metrics").text
        assert metric(page, "prognos_drift_detected") == 0
        assert 'prognos_drift_psi{feature="' in page
        assert client.get("/api/v1/alerts", params={"kind": "drift"}).json()["total"] == 0

        for i, rows in enumerate(requests(tiny_bundle, 60, seed=1)):
            body = {"engine_id": f"shift{i}", "sensor_data": shifted(tiny_bundle, rows)}
            r = client.post("/api/v1/predict", json=body)
            assert r.status_code == 200, r.text  # shifted, yet plausible: served, and watched

        wait_for(lambda: report().get("status") == "drift", "the drift job to flag the shifted traffic")
        loud = report()
        assert loud["n_drifted"] >= loud["min_drifted"] >= 1
        assert metric(client.get("/metrics").text, "prognos_drift_detected") == 1
        alerts = client.get("/api/v1/alerts", params={"kind": "drift", "status": "open"}).json()
        assert alerts["total"] == 1, alerts
        alert = alerts["items"][0]
        # a model-level alert: on the served model version, not on a (pseudo-)engine
        assert alert["target_kind"] == "model" and alert["engine_id"] is None and version in alert["message"]
        # raised by the first check that saw enough shifted requests: a drifted subset of the features
        assert set(alert["details"]["drifted_features"]) <= {q["name"] for q in loud["features"]}
        assert len(alert["details"]["drifted_features"]) >= loud["min_drifted"]

        # the on-demand check answers the same way, and the capture reached the disk
        now = client.post("/api/v1/models/drift/check").json()
        assert now["status"] == "drift"
        assert (tmp_path / "data" / "drift" / "capture.jsonl").exists()
        assert client.post("/api/v1/models/drift/check", headers={"Authorization": ""}).status_code == 401

    # after the server is gone, the CLI reads what it captured (120 records since the start)
    res = cli(env, "drift", "report", "--bundle", str(tiny_bundle), "--since", started, "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "DRIFT" in res.stdout and "120 requests captured" in res.stdout
    assert json.loads((tmp_path / "r" / "drift.json").read_text())["n_samples"] == 120
    res = cli(env, "drift", "report", "--bundle", str(tiny_bundle), "--since", "yesterday")
    assert res.returncode == 3 and "--since: 'yesterday' is not an ISO-8601 time" in res.stderr


def test_drift_report_on_an_old_bundle_says_no_reference(tiny_bundle: Path, tmp_path: Path) -> None:
    from tests.unit.lifecycle.support import variant_bundle

    old = variant_bundle(tiny_bundle, tmp_path / "old", "old-style")  # written without reference.json
    res = cli(clean_env(tmp_path), "drift", "report", "--bundle", str(old), "--input", str(_synthetic_file(tmp_path)))
    assert res.returncode == 4
    assert "no reference profile" in res.stderr and "Traceback" not in res.stderr
    res = cli(clean_env(tmp_path), "drift", "report")
    assert res.returncode == 2 and "pass --bundle DIR or --model ALIAS" in res.stderr


def _synthetic_file(tmp_path: Path) -> Path:
    from prognos.data.synthetic import synthetic_fleet
    from tests.helpers import cmapss_text

    path = tmp_path / "fleet.txt"
    path.write_text(cmapss_text(synthetic_fleet(4, seed=9)))
    return path


# --- the must-show on C-MAPSS -----------------------------------------------------------------------


def test_an_fd001_model_flags_fd002_and_fd003_but_not_fd001(fd001_bundle: Path, cmapss: Path, tmp_path: Path
                                                            ) -> None:
    from prognos.data.cmapss import load_readings
    from prognos.lifecycle.drift import DriftThresholds, compute_drift, sample_from_readings
    from prognos.reference import load_reference
    from prognos.serving.predictor import Predictor

    predictor = Predictor.from_path(fd001_bundle)
    reference = load_reference(predictor.bundle)
    thresholds = DriftThresholds()  # the defaults the server and the CLI use
    reports = {}
    for subset in ("FD001", "FD002", "FD003"):
        sample = sample_from_readings(predictor, load_readings(cmapss / f"test_{subset}.txt"), max_rows=8000)
        reports[subset] = compute_drift(reference, sample, thresholds, predictor.version)
    # in distribution: not one feature crosses both thresholds, however much the test rows lean young
    fd001 = reports["FD001"]
    assert fd001.status == "ok" and fd001.n_drifted == 0 and len(fd001.features) == 14, fd001.message
    assert max(q.ks for q in fd001.features) < thresholds.ks_effect
    # six operating regimes (FD002) and a second fault mode (FD003) are flagged, with room to spare
    for subset in ("FD002", "FD003"):
        r = reports[subset]
        assert r.status == "drift", r.message
        assert r.n_drifted >= r.min_drifted + 3, r.message

    # the same verdict through the command line, with its HTML report
    out = tmp_path / "report"
    res = cli(clean_env(tmp_path), "drift", "report", "--bundle", str(fd001_bundle), "--input",
              str(cmapss / "test_FD003.txt"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "DRIFT" in res.stdout
    cli_report = json.loads((out / "drift.json").read_text())  # another row subsample, the same verdict
    assert cli_report["detected"] and cli_report["n_drifted"] >= cli_report["min_drifted"] + 3
    html = (out / "drift.html").read_text()
    assert "DRIFT DETECTED" in html and "data:image/png;base64," in html
