"""deploy/Dockerfile and its entry point, statically (the container smoke test, deploy/smoke_test.py,
runs the built image for real under CI=true). The entry point's argument handling is run here with
a stand-in ``prognos`` on PATH that prints what it was given."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, REPO

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def _stage(name: str) -> str:
    m = re.search(rf"^FROM .* AS {name}\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.S | re.M)
    assert m, f"no stage {name}"
    return "\n".join(line for line in m.group(1).splitlines() if not line.lstrip().startswith("#"))


def test_runtime_stage_is_non_root_exec_form_and_health_checked() -> None:
    runtime = _stage("runtime")
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/prognos-entrypoint"]' in runtime  # exec form: signals reach prognos
    assert 'CMD ["serve"]' in runtime
    assert re.search(r"^HEALTHCHECK .*prognos-healthcheck", runtime, re.M)
    assert 'VOLUME ["/var/lib/prognos"]' in runtime
    assert "PROGNOS_DATA_DIR=/var/lib/prognos" in runtime
    assert "EXPOSE 8000 50051" in runtime


def test_runtime_stage_has_no_torch_and_no_compilers() -> None:
    runtime = _stage("runtime")
    assert "torch" not in runtime and "train" not in runtime
    for tool in ("build-essential", "gcc", "python3-dev", "python3-venv", "pip install"):
        assert tool not in runtime, tool
    assert re.search(r"^FROM debian:bookworm-slim AS base$", DOCKERFILE, re.M)
    assert re.search(r"^FROM base AS train$", DOCKERFILE, re.M), "a training target exists"
    assert "USER 10001:10001" in _stage("train")


def test_build_context_is_small() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[1:2] == ["*"] or "*" in ignore, "everything excluded by default (.venv, data, .git)"
    for needed in ("!pyproject.toml", "!README.md", "!src/", "!deploy/entrypoint.sh", "!deploy/healthcheck.py"):
        assert needed in ignore


def _entrypoint(tmp_path: Path, args: list[str], env: dict[str, str], model_dir: Path | None = None) -> list[str]:
    fake = tmp_path / "bin" / "prognos"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\necho "BUNDLE=${PROGNOS_BUNDLE:-}"\n'
                    'echo "SAGEMAKER=${PROGNOS_SAGEMAKER:-}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    script = (DEPLOY / "entrypoint.sh").read_text()
    if model_dir is not None:
        script = script.replace("/opt/ml/model", str(model_dir))
    entry = tmp_path / "entrypoint.sh"
    entry.write_text(script)
    base = {"PATH": f"{fake.parent}:/usr/bin:/bin"}
    out = subprocess.run(["sh", str(entry), *args], capture_output=True, text=True, env={**base, **env}, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_entrypoint_serves_the_bundle_from_the_environment(tmp_path: Path) -> None:
    assert _entrypoint(tmp_path, ["serve"], {"PROGNOS_BUNDLE": "/bundle"}) == ["serve", "BUNDLE=/bundle", "SAGEMAKER="]


def test_entrypoint_follows_a_registry_alias(tmp_path: Path) -> None:
    out = _entrypoint(tmp_path, ["serve"], {"PROGNOS_MODEL": "production"})
    assert out[:3] == ["serve", "--model", "production"]


def test_entrypoint_speaks_sagemaker_when_sagemaker_unpacks_a_model(tmp_path: Path) -> None:
    model = tmp_path / "ml-model"
    model.mkdir()
    (model / "bundle.json").write_text("{}")
    out = _entrypoint(tmp_path, ["serve"], {}, model_dir=model)
    assert out == ["serve", f"BUNDLE={model}", "SAGEMAKER=true"]


def test_entrypoint_passes_other_commands_through(tmp_path: Path) -> None:
    assert _entrypoint(tmp_path, ["models", "list"], {})[:2] == ["models", "list"]


def test_healthcheck_script_fails_when_nothing_listens() -> None:
    env = {**os.environ, "PROGNOS_HTTP_PORT": "1"}
    out = subprocess.run(["python3", str(DEPLOY / "healthcheck.py")], capture_output=True, text=True, env=env,
                         timeout=30)
    assert out.returncode == 1 and "not ready" in out.stderr


@pytest.mark.parametrize("script", ["build-image.sh", "install.sh", "entrypoint.sh", "ci.sh"])
def test_shell_scripts_parse(script: str) -> None:
    out = subprocess.run(["bash", "-n", str(DEPLOY / script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
