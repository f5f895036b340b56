"""deploy/terraform: fmt, init from the local provider mirror, validate and ``terraform test`` with a
mocked AWS provider, per topology. Slow (the provider is ~600 MB): CI=true or PROGNOS_DEPLOY_TESTS=1."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, requires_deploy_switch

TERRAFORM = DEPLOY / "terraform"
PLUGINS = Path(os.environ.get("PROGNOS_TF_PLUGIN_DIR", "/opt/tf-plugins"))
pytestmark = [requires_deploy_switch,
              pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")]


def _tf(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(["terraform", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def test_fmt_check() -> None:
    out = _tf(["fmt", "-check", "-recursive", "-no-color"], TERRAFORM)
    assert out.returncode == 0, f"unformatted: {out.stdout}{out.stderr}"


@pytest.mark.parametrize("topology", ["free-tier", "containers"])
def test_init_validate_and_test(topology: str, tmp_path: Path) -> None:
    if not PLUGINS.exists():
        pytest.skip(f"no local provider mirror at {PLUGINS} (set PROGNOS_TF_PLUGIN_DIR)")
    # A copy: .terraform/ and the lock file stay out of the checkout.
    work = tmp_path / "tf"
    shutil.copytree(TERRAFORM, work, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    cwd = work / topology
    out = _tf(["init", "-backend=false", f"-plugin-dir={PLUGINS}", "-input=false", "-no-color"], cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    out = _tf(["validate", "-no-color"], cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    out = _tf(["test", "-no-color"], cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failed" in out.stdout
