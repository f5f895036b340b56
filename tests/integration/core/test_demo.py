"""`prognos demo`, the README's main command, end to end: the "what you have now" block, one demo
key across runs, a living fleet (engines keep updating after their first unit's data ended), and
a model trained on synthetic data replaced by a real one, with progress lines while it trains.

Kept fast: a tiny model trained once for the session, C-MAPSS-layout files generated on the fly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import write_cmapss_dir

pytest.importorskip("torch")


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_readings) -> Path:  # type: ignore[no-untyped-def]
    """A tiny model trained on the synthetic fleet, named as the demo names it (dataset SYNTHETIC)."""
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    out = tmp_path_factory.mktemp("demo-bundle") / "bundle"
    cfg = TrainConfig.model_validate({"model": "tcn", "folds": 2, "epochs": 2, "patience": 2, "window": 20,
                                      "holdout": 0.0, "threads": 1, "serve": "ensemble"})
    train_bundle_from_readings(synthetic_readings, "SYNTHETIC", out, cfg, log=lambda m: None)
    return out


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    lines: list[str]

    def read_until(self, pattern: str, timeout_s: float = 240) -> re.Match[str]:
        """Read output lines until one matches (the demo prints as it goes; a dead demo fails here)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest = self.proc.communicate(timeout=60)[0]
        self.lines.append(rest)
        assert self.proc.returncode == 0, self.text
        assert "demo stopped" in rest and "Traceback" not in self.text
        return self.text


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    running: list[Demo] = []

    def start(state: Path, *args: str, cmapss: Path | None = None) -> Demo:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
        env.update(PROGNOS_DATA_DIR=str(state), PROGNOS_HTTP_PORT="0", PROGNOS_GRPC_PORT="0",
                   PROGNOS_CMAPSS_DIR=str(cmapss or tmp_path / "no-data"))
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "demo", "--duration", "300", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        running.append(Demo(proc, []))
        return running[-1]

    yield start
    for demo in running:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.communicate(timeout=30)


def try_verbatim(demo: Demo, cwd: Path, url: str, key: str) -> list[subprocess.CompletedProcess[str]]:
    """Run every suggested command exactly as printed, in a shell with none of the demo's PROGNOS_*
    variables (another terminal), once the fleet has engines; each must exit 0."""
    deadline = time.monotonic() + 60
    while not _engines(url, key):
        assert time.monotonic() < deadline, "the demo's fleet sent no readings in 60 s"
        time.sleep(0.2)
    block = demo.text.split("things to try next", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in block.splitlines()[1:] if line.strip()]
    assert len(commands) == 4 and commands[-1].startswith("curl "), commands
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_")}
    runs = []
    for command in commands:
        r = subprocess.run(["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{command}\n{r.stdout}\n{r.stderr}"
        runs.append(r)
    predict, evaluate, plan, curl = runs
    assert "RUL" in predict.stdout and "RMSE" in evaluate.stdout
    assert re.search(r"of [1-9]\d* engines", plan.stdout), plan.stdout + plan.stderr  # the demo's fleet, not 0 of 0
    assert '"items"' in curl.stdout
    return runs


def _engines(base: str, key: str) -> dict[str, dict]:  # type: ignore[type-arg]
    r = httpx.get(f"{base}/api/v1/engines", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return {e["engine_id"]: e for e in r.json()["items"]}


def test_what_you_have_a_living_fleet_and_one_key_across_runs(start_demo, synthetic_bundle: Path,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "demo").mkdir(parents=True)
    shutil.copytree(synthetic_bundle, state / "demo" / "bundle")
    demo = start_demo(state, "--engines", "3", "--speed", "60")
    url = demo.read_until(r"dashboard\s+(http://\S+)/").group(1)
    key = demo.read_until(r"API key\s+(pk_\S+)").group(1)
    demo.read_until(r"things to try next")
    demo.read_until(r"curl -H")
    out = demo.text
    assert "reusing the model trained before" in out and "SYNTHETIC" in out
    assert f"state       {state}" in out and str(state / "demo" / "bundle") in out
    assert re.search(r"prognos on your PATH: (it is|export PATH=)", out)
    assert f"export PROGNOS_DATA_DIR={state}" in out
    assert re.search(r"prognos predict --bundle \S+ --input \S+test_SYNTHETIC.txt", out)
    assert re.search(r"prognos evaluate --bundle \S+ --dataset SYNTHETIC --data-dir \S+", out)
    try_verbatim(demo, tmp_path, url, key)
    # The sample data is named as generated and its truth is valid (engines cut before they fail).
    rul = [int(x) for x in (state / "demo" / "synthetic-data" / "RUL_SYNTHETIC.txt").read_text().split()]
    assert len(rul) == 20 and min(rul) >= 1
    assert not list((state / "demo").rglob("*FD001*"))

    # A second demo on the same state while this one runs: one error naming the running one, exit 6.
    second = start_demo(state, "--engines", "3")
    rest = second.proc.communicate(timeout=60)[0]
    assert second.proc.returncode == 6, rest
    assert f"a demo is already running on {state} (pid {demo.proc.pid}, dashboard {url})" in rest
    assert "Traceback" not in rest and "demo stopped" not in rest
    page = httpx.get(f"{url}/", timeout=5, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()

    # The fleet lives on: a unit ends, a new one goes into the same position, and cycles keep coming.
    event = demo.read_until(r"(ENG-\d+): synthetic #\d+ failed at cycle (\d+); a new unit goes in")
    engine, ended_at = event.group(1), int(event.group(2))
    first = _engines(url, key)
    assert set(first) == {"ENG-01", "ENG-02", "ENG-03"}
    assert all(e["rul"] is not None for e in first.values())

    def moved_on() -> bool:
        now = _engines(url, key)
        return now[engine]["last_cycle"] > ended_at + 5 and all(
            now[e]["last_cycle"] > first[e]["last_cycle"] for e in first)

    deadline = time.monotonic() + 60
    while not moved_on():
        assert time.monotonic() < deadline, f"engines stopped updating: {_engines(url, key)}"
        time.sleep(0.5)
    # Units wear out and are replaced: RUL alerts open, and resolve by themselves when a fresh unit goes in.
    def resolved_rul_alerts() -> list[dict]:  # type: ignore[type-arg]
        r = httpx.get(f"{url}/api/v1/alerts", params={"status": "resolved", "kind": "rul_low"},
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)
        return [a for a in r.json()["items"] if a["resolved_by"] == "auto"]

    deadline = time.monotonic() + 90
    while not resolved_rul_alerts():
        assert time.monotonic() < deadline, "no RUL alert opened and resolved as units were replaced"
        time.sleep(1)
    tags = _engines(url, key)[engine]["tags"]
    assert tags.get("installed_at_cycle", 0) > 1 and str(tags.get("unit", "")).startswith("synthetic #")
    demo.stop()

    # A second run: the same key, the positions continue their cycle count.
    again = start_demo(state, "--engines", "3", "--speed", "60")
    assert again.read_until(r"API key\s+(pk_\S+)").group(1) == key
    again.read_until(r"a new unit goes in")
    again.stop()
    assert (state / "demo" / "key").stat().st_mode & 0o077 == 0  # a secret: owner only


def test_a_synthetic_model_is_replaced_once_data_is_found(start_demo, synthetic_bundle: Path,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "demo").mkdir(parents=True)
    shutil.copytree(synthetic_bundle, state / "demo" / "bundle")
    data = write_cmapss_dir(tmp_path / "cmapss", n_train=10, n_test=6)
    demo = start_demo(state, "--engines", "2", "--speed", "20", "--epochs", "2", "--members", "2", cmapss=data)
    demo.read_until(r"trained on SYNTHETIC data; C-MAPSS data found at .*replace")
    progress = [demo.read_until(r"training: member (\d)/2 epoch (\d)/2.*left").groups() for _ in range(4)]
    assert sorted(progress) == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]  # the two train at once
    url = demo.read_until(r"dashboard\s+(http://\S+)/").group(1)
    key = demo.read_until(r"API key\s+(pk_\S+)").group(1)
    demo.read_until(r"curl -H")
    assert "FD001 test engines (unseen in training)" in demo.text
    assert re.search(r"prognos evaluate --bundle \S+ --dataset FD001 --data-dir " + re.escape(str(data)), demo.text)
    try_verbatim(demo, tmp_path, url, key)
    model = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10).json()
    manifest = model.get("manifest", model)
    assert manifest["dataset"] == "FD001"
    demo.stop()


@pytest.mark.slow
@pytest.mark.cmapss
def test_demo_on_the_real_data(start_demo, synthetic_bundle: Path, tmp_path: Path, cmapss: Path) -> None:  # type: ignore[no-untyped-def]
    """With NASA's files: the synthetic model is replaced by an FD001 one (1 epoch, 2 members, on all
    100 training engines), and the fleet flies FD001 test engines, replaced as their data ends."""
    state = tmp_path / "state"
    (state / "demo").mkdir(parents=True)
    shutil.copytree(synthetic_bundle, state / "demo" / "bundle")
    demo = start_demo(state, "--engines", "5", "--speed", "40", "--epochs", "1", "--members", "2", cmapss=cmapss)
    demo.read_until(r"trained on SYNTHETIC data; C-MAPSS data found at .*replace")
    demo.read_until(r"training: member 2/2 epoch 1/1", timeout_s=1200)
    demo.read_until(r"curl -H")
    assert "FD001 test engines (unseen in training)" in demo.text
    demo.read_until(r"ENG-\d+: FD001 test #\d+ left service \(end of its data\) at cycle \d+; a new unit goes in")
    demo.stop()
