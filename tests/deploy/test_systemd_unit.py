"""deploy/systemd/prognos.service: hardened, capped at 600 MB, verified by systemd itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

UNIT = DEPLOY / "systemd" / "prognos.service"


def _service() -> dict[str, list[str]]:
    """[Service] keys -> every value (systemd allows repeated keys)."""
    values: dict[str, list[str]] = {}
    section = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_unit_is_hardened_and_capped() -> None:
    s = _service()
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["MemoryMax"] == ["600M"]
    assert s["Restart"] == ["on-failure"]
    assert "/var/lib/prognos" in s["ReadWritePaths"]
    assert s.get("User") == ["prognos"] or s.get("DynamicUser") == ["yes"], "runs as a dedicated, unprivileged user"
    assert s["CapabilityBoundingSet"] == [""], "no capabilities at all"
    # SIGHUP is the server's reload signal (prognos.server): `systemctl reload` must send exactly that.
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["ExecStart"][0].split()[1:] == ["serve"]
    # The stop timeout leaves the server its drain (PROGNOS_SHUTDOWN_GRACE_S, default 10 s).
    assert int(s["TimeoutStopSec"][0]) > 10


def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    # verify checks that ExecStart exists: point it at this venv's prognos (the install puts it in
    # /opt/prognos/bin); every other line is verified as shipped.
    prognos = Path(sys.executable).parent / "prognos"
    assert prognos.exists(), f"{prognos} missing: install the package (make install)"
    text = UNIT.read_text().replace("ExecStart=/opt/prognos/bin/prognos", f"ExecStart={prognos}")
    assert text != UNIT.read_text()
    unit = tmp_path / "prognos.service"
    unit.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "prognos.service" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: an unknown key in the unit is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    prognos = Path(sys.executable).parent / "prognos"
    text = UNIT.read_text().replace("ExecStart=/opt/prognos/bin/prognos", f"ExecStart={prognos}")
    unit = tmp_path / "prognos.service"
    unit.write_text(text.replace("MemoryMax=600M", "MemoryMaxx=600M"))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "MemoryMaxx" in out.stdout + out.stderr


def test_install_script_installs_this_unit() -> None:
    script = (DEPLOY / "install.sh").read_text()
    assert 'install -m 0644 "$HERE/systemd/prognos.service" /etc/systemd/system/prognos.service' in script
