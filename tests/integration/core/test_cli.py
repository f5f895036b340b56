"""The CLI as a user runs it: real subprocesses, generated C-MAPSS-layout files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_cmapss_dir

pytest.importorskip("torch")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROGNOS_CMAPSS_DIR": "/nonexistent"}
    return subprocess.run([sys.executable, "-m", "prognos.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_cmapss_dir(root / "data", n_train=16, n_test=8)
    bundle = root / "bundle"
    cfg = root / "cfg.toml"
    cfg.write_text("[train]\nmodel = \"tcn\"\nwindow = 20\nfolds = 2\npatience = 3\nthreads = 1\n")
    r = run("train", "--dataset", "FD001", "--data-dir", str(data), "--out", str(bundle), "--config", str(cfg),
            "--epochs", "3", "--seed", "1")
    assert r.returncode == 0, r.stderr
    return data, bundle


def test_train_evaluate_predict(trained, tmp_path):
    data, bundle = trained
    assert {"bundle.json", "model.onnx", "preprocessing.json"} <= {p.name for p in bundle.iterdir()}
    report = tmp_path / "report"
    r = run("evaluate", "--bundle", str(bundle), "--dataset", "FD001", "--data-dir", str(data), "--report", str(report))
    assert r.returncode == 0, r.stderr
    m = json.loads((report / "metrics.json").read_text())
    for key in ("rmse", "mae", "score", "coverage", "mean_interval_width", "n_engines"):
        assert key in m
    assert m["n_engines"] == 8
    # Beside the last cycle, every cycle of the same test engines (truth R + L - t), printed too.
    ec = m["every_cycle"]
    n_rows = sum(1 for line in (data / "test_FD001.txt").read_text().splitlines() if line.strip())
    assert ec["n_predictions"] == n_rows and ec["n_engines"] == 8
    assert {"by_true_rul", "by_age", "late_life", "status", "first_alarm", "worst_engines_by_coverage"} <= set(ec)
    assert "every cycle:" in r.stdout and "status changes, fleet" in r.stdout and "true RUL" in r.stdout
    assert {"pred_vs_true.png", "error_hist.png", "trajectories.png", "every_cycle.png"} <= {
        p.name for p in report.iterdir()}
    assert (report / "pred_vs_true.png").read_bytes()[:4] == b"\x89PNG"
    # any RUL file path
    other = tmp_path / "elsewhere.txt"
    other.write_text((data / "RUL_FD001.txt").read_text())
    r = run("evaluate", "--bundle", str(bundle), "--data-dir", str(data), "--rul-file", str(other),
            "--report", str(tmp_path / "r2"))
    assert r.returncode == 0 and str(other) in json.loads((tmp_path / "r2" / "metrics.json").read_text())["protocol"]

    r = run("predict", "--bundle", str(bundle), "--input", str(data / "test_FD001.txt"), "--format", "json")
    assert r.returncode == 0, r.stderr
    preds = json.loads(r.stdout)["predictions"]
    assert len(preds) == 8 and all(p["lower"] <= p["predicted_rul"] <= p["upper"] for p in preds)
    r = run("predict", "--bundle", str(bundle), "--input", str(data / "test_FD001.txt"), "--format", "csv")
    assert r.stdout.splitlines()[0].startswith("engine_id,") and len(r.stdout.splitlines()) == 9


def test_holdout_evaluation_without_rul_file(tmp_path):
    data = write_cmapss_dir(tmp_path / "data", n_train=12, n_test=4)
    (data / "RUL_FD001.txt").unlink()
    r = run("train", "--data-dir", str(data), "--out", str(tmp_path / "b"), "--epochs", "2", "--folds", "2",
            "--model", "tcn")
    assert r.returncode == 0, r.stderr
    assert "holding out" in r.stdout + r.stderr
    r = run("evaluate", "--bundle", str(tmp_path / "b"), "--data-dir", str(data), "--report", str(tmp_path / "r"))
    assert r.returncode == 0, r.stderr
    assert "held-out training engines" in r.stdout
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["every_cycle_holdout"]["late_life"]["n"] > 0  # whole lives: the last 50 cycles are in


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("train", "--data-dir", "/no/such/dir", "--out", "x"), "no such directory"),
        (("train", "--dataset", "FD007", "--data-dir", "."), "unknown subset 'FD007'"),
        (("evaluate", "--bundle", "/no/bundle"), "no such bundle directory"),
        (("predict", "--bundle", "/no/bundle", "--input", "x.txt"), "no such bundle directory"),
    ],
)
def test_user_errors_are_one_line(args, needle):
    r = run(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_malformed_and_truncated_files(trained, tmp_path):
    data, bundle = trained
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (data / "train_FD001.txt").read_text().splitlines()
    (bad / "train_FD001.txt").write_text("\n".join([*text[:50], text[50][:len(text[50]) // 2]]) + "\n")
    r = run("train", "--data-dir", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 3 and "line 51: expected 26 columns" in r.stderr and "Traceback" not in r.stderr
    (bad / "train_FD001.txt").write_text("\n".join([*text[:5], text[5].replace(" ", " x", 1)]) + "\n")
    r = run("train", "--data-dir", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 3 and "line 6" in r.stderr
    r = run("predict", "--bundle", str(bundle), "--input", str(bad / "train_FD001.txt"))
    assert r.returncode == 3 and "line 6" in r.stderr and "Traceback" not in r.stderr


def test_tampered_bundle(trained, tmp_path):
    import shutil

    _, bundle = trained
    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    (b / "preprocessing.json").write_text((b / "preprocessing.json").read_text().replace("0", "1", 1))
    r = run("predict", "--bundle", str(b), "--input", str(trained[0] / "test_FD001.txt"))
    assert r.returncode == 4 and "does not match its SHA-256" in r.stderr and "Traceback" not in r.stderr
