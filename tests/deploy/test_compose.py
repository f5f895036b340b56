"""deploy/compose.yaml: the single-box layout fits 1 GB, keeps its state in named volumes, restarts,
and checks every service's health. The images of PostgreSQL, Prometheus and Grafana cannot be pulled
on a registry-less machine; deploy/stack_test.py runs the same pieces from Debian packages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"
PATH = "/usr/bin:/bin:/usr/local/bin"


def _size_mib(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg])b?", str(text).lower())
    assert m, f"unreadable memory size {text!r}"
    return float(m.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024}[m.group(2)]


def _doc() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_fit_one_gigabyte_with_restarts_and_healthchecks() -> None:
    services = _doc()["services"]
    assert set(services) == {"prognos", "postgres", "prometheus", "grafana"}
    total = 0.0
    for name, svc in services.items():
        assert svc["restart"] in ("unless-stopped", "always", "on-failure"), name
        assert "test" in svc["healthcheck"], name
        total += _size_mib(svc["mem_limit"])
        assert svc.get("memswap_limit") == svc["mem_limit"], f"{name}: no swap beyond the limit"
    assert total <= 1024, f"memory limits add up to {total:.0f} MiB"
    assert _size_mib(services["prognos"]["mem_limit"]) == 600
    assert services["prognos"]["healthcheck"]["test"] == ["CMD", "/usr/local/bin/prognos-healthcheck"]
    assert services["prognos"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_state_lives_in_named_volumes() -> None:
    doc = _doc()
    named = set(doc["volumes"])
    for name in ("prognos", "postgres", "prometheus", "grafana"):
        mounts = [v.split(":")[0] for v in doc["services"][name]["volumes"]]
        assert any(m in named for m in mounts), f"{name} keeps no state in a named volume"


def test_only_prognos_listens_beyond_localhost() -> None:
    for name, svc in _doc()["services"].items():
        for port in svc.get("ports", []):
            if name != "prognos":
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every interface"


def test_secrets_come_from_the_environment_file_not_the_compose_file() -> None:
    env = _doc()["services"]["prognos"]["environment"]
    assert env["PROGNOS_ADMIN_TOKEN"].startswith("${PROGNOS_ADMIN_TOKEN:?")
    assert "${POSTGRES_PASSWORD:?" in env["PROGNOS_DATABASE_URL"]


def test_mounted_monitoring_files_exist_and_parse() -> None:
    for svc in ("prometheus", "grafana"):
        for volume in _doc()["services"][svc]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{svc} mounts missing {source}"
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prom["scrape_configs"][0]["static_configs"][0]["targets"] == ["prognos:8000"]
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "prognos.json").read_text())
    assert dash["uid"] == "prognos" and len(dash["panels"]) >= 10


def test_podman_compose_accepts_the_file() -> None:
    tool = shutil.which("podman-compose") or shutil.which("podman-compose", path=str(Path(sys.executable).parent))
    if tool is None:
        pytest.skip("podman-compose not installed (PyPI podman-compose); the YAML checks above still ran")
    if shutil.which("podman", path=PATH) is None:  # podman-compose asks podman for its version first
        pytest.skip("podman not installed (Debian package podman: make test installs it as root)")
    env = {"POSTGRES_PASSWORD": "x", "PROGNOS_ADMIN_TOKEN": "x", "GRAFANA_ADMIN_PASSWORD": "x",
           "PROGNOS_BUNDLE_DIR": "/tmp", "PATH": PATH}
    out = subprocess.run([tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "prognos" in out.stdout
