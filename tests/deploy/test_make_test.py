"""`make test` prepares what the tests need and `.ci/run` only adds CI's switches: the Debian package
check (scripts/system-deps.sh) against a fake dpkg/apt, the order of `make test`'s steps (container
checks only when switched on, pytest's summary last), and `.ci/run` run against a fake `make`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

DEPS = REPO / "scripts" / "system-deps.sh"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def _deps(tmp_path: Path, *args: str, installed: str, uid: int) -> subprocess.CompletedProcess[str]:
    """scripts/system-deps.sh with dpkg-query answering ``installed`` (package names), ``id -u``
    answering ``uid``, and an apt-get that only records how it was called."""
    fake = tmp_path / "bin"
    log = tmp_path / "apt.log"
    status = "\n".join(f"installed {p}" for p in installed.split())
    _fake(fake, "dpkg-query", f"printf '%s\\n' '{status}'")
    _fake(fake, "id", f"echo {uid}")
    _fake(fake, "apt-get", f'echo "$@" >> {log}')
    env = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(DEPS), *args], capture_output=True, text=True, env=env, timeout=30)


ALL = ("python3 python3-venv ca-certificates chromium libatomic1 mosquitto nginx postgresql-15 prometheus systemd "
       "podman curl runc debootstrap")


def test_nothing_to_do_is_silent(tmp_path: Path) -> None:
    r = _deps(tmp_path, "test", "container", installed=ALL, uid=1000)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not (tmp_path / "apt.log").exists()


def test_missing_packages_are_installed_as_root(tmp_path: Path) -> None:
    r = _deps(tmp_path, "test", installed="python3 python3-venv ca-certificates nginx", uid=0)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    installed = calls[1].split()
    assert installed[:3] == ["install", "-y", "-qq"]
    assert set(installed[3:]) == {"chromium", "libatomic1", "mosquitto", "postgresql-15", "prometheus", "systemd",
                                  "podman", "curl"}
    assert "runc" not in installed  # only with the container checks


def test_missing_packages_without_root_name_the_command_and_fail(tmp_path: Path) -> None:
    r = _deps(tmp_path, "test", installed="python3 python3-venv ca-certificates", uid=1000)
    assert r.returncode == 1 and r.stdout == ""
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1
    assert ("sudo apt-get install -y chromium libatomic1 mosquitto nginx postgresql-15 prometheus systemd podman curl"
            in line)
    assert not (tmp_path / "apt.log").exists()


def test_an_unknown_set_is_a_usage_error(tmp_path: Path) -> None:
    assert _deps(tmp_path, "everything", installed=ALL, uid=0).returncode == 2


def _dry_run(**env: str) -> list[str]:
    # Not the switches of the run around this test, nor its make's (under `make test` a nested make would
    # also print "Entering directory" lines).
    outer = ("CI", "PROGNOS_CONTAINER_TESTS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    clean = {k: v for k, v in os.environ.items() if k not in outer}
    r = subprocess.run(["make", "--no-print-directory", "-n", "test", "VENV=/nonexistent-venv"], cwd=REPO,
                       capture_output=True, text=True, env={**clean, **env}, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize(("env", "containers"), [({}, False), ({"CI": "true"}, True),
                                                 ({"PROGNOS_CONTAINER_TESTS": "1"}, True),
                                                 ({"CI": "true", "PROGNOS_CONTAINER_TESTS": "0"}, False)])
def test_make_test_checks_packages_first_and_ends_with_pytest(env: dict[str, str], containers: bool) -> None:
    steps = _dry_run(**env)
    assert steps[0].startswith("scripts/system-deps.sh test")
    assert ("container" in steps[0]) == containers
    assert steps[-1].startswith("/nonexistent-venv/bin/python -m pytest")  # its summary is the last line
    ran = [s for s in steps if "deploy/ci.sh" in s and not s.startswith("echo")]
    assert bool(ran) == containers, steps
    if containers:
        assert steps.index(ran[0]) == len(steps) - 2  # after ruff and mypy, right before pytest


def test_ci_run_installs_nothing_and_calls_make_test_with_the_switches(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    record = tmp_path / "make.env"
    _fake(fake, "make", f'echo "args=$*" > {record}; env >> {record}')
    for tool in ("apt-get", "apt", "dpkg", "pip", "pip3", "sudo"):
        _fake(fake, tool, f"echo {tool} >> {tmp_path / 'installers.log'}; exit 1")
    env = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([str(REPO / ".ci" / "run")], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    seen = dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)
    assert seen["args"] == "test"
    assert seen["CI"] == "true" and seen["PROGNOS_RELIABILITY_FULL"] == "1"
    assert Path(seen["PROGNOS_DATA_DIR"]).is_dir()  # a fresh state directory
    assert not (tmp_path / "installers.log").exists()
