"""Monitoring assets against the real thing: ``promtool check rules`` on the alert rules, every
metric the rules and the Grafana dashboard name is exported by a live ``prognos serve``, and
Debian's Prometheus scrapes that server with the shipped config and evaluates every rule."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, TOKEN, LiveServer, free_port

RULES = DEPLOY / "prometheus" / "alerts.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "prognos.json"
# Metric names in PromQL: prognos' own and the process collector's (`up` is Prometheus' own).
_METRIC = re.compile(r"\b((?:prognos|process)_[a-z0-9_]+)\b")


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def test_promtool_check_rules_passes() -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    out = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a PromQL syntax error is refused."""
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    broken = tmp_path / "alerts.yml"
    broken.write_text(RULES.read_text().replace("up{job=\"prognos\"} == 0", "up{job=\"prognos\" == 0", 1))
    out = subprocess.run(["promtool", "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0


def test_rules_cover_every_required_alert() -> None:
    names = {rule["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for rule in g["rules"]}
    for required in ("PrognosDown", "PrognosNotReady", "PrognosHigh5xxRatio", "PrognosPredictLatencyP99High",
                     "PrognosOverloaded", "PrognosDriftDetected", "PrognosIngestionStalled", "PrognosDiskAlmostFull",
                     "PrognosRetentionNotRunning"):
        assert required in names


def _exported(server: LiveServer) -> tuple[set[str], str]:
    """Sample names on /metrics after one ingest and one predict went through."""
    from prognos.data.synthetic import synthetic_fleet

    engine = next(iter(synthetic_fleet(1, seed=3).engines()))
    fields = ("setting_1", "setting_2", "setting_3", *(f"s{i}" for i in range(1, 22)))
    readings = [{"cycle": int(c), **dict(zip(fields, map(float, row), strict=True))}
                for c, row in zip(engine.cycles[:40], engine.values[:40], strict=True)]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        assert client.post("/api/v1/engines/deploy-1/readings", json=readings).status_code in (200, 201)
        assert client.post("/api/v1/predict", json={"engine_id": "deploy-1", "sensor_data": readings}
                           ).status_code == 200
        text = client.get("/metrics").text
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    # Labelled gauges with no series yet (drift PSI before the first drift check) are declared.
    names |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ") and line.endswith(" gauge")}
    return names, text


def test_every_metric_in_the_rules_and_the_dashboard_is_exported(live_server: LiveServer) -> None:
    names, text = _exported(live_server)
    wanted = {m for expr in [*_rule_exprs(), *_dashboard_exprs()] for m in _METRIC.findall(expr)}
    assert len(wanted) > 20
    missing = sorted(wanted - names)
    assert not missing, f"named in deploy/prometheus or deploy/grafana but not on /metrics: {missing}"
    # The label values the rules select on exist too: the predict route, and the 5xx split by status.
    assert re.search(r'prognos_http_request_duration_seconds_bucket\{[^}]*route="/api/v1/predict', text)
    assert re.search(r'prognos_http_requests_total\{[^}]*status="200"', text)


def test_prometheus_scrapes_prognos_and_evaluates_every_rule(live_server: LiveServer, tmp_path: Path) -> None:
    """Debian's Prometheus with the shipped config (target and intervals rewritten for the test)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    config = yaml.safe_load(PROM_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{live_server.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as out:
        prom = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 60
        up = rules = None
        while time.monotonic() < deadline:
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                up = httpx.get(f"{api}/query", params={"query": 'up{job="prognos"}'}, timeout=2).json()
                rules = httpx.get(f"{api}/rules", timeout=2).json()
            except (httpx.TransportError, ValueError):
                time.sleep(0.5)
                continue
            evaluated = [r for g in rules["data"]["groups"] for r in g["rules"]]
            if (up["data"]["result"] and evaluated
                    and all(r.get("lastEvaluation", "").startswith("20") for r in evaluated)):
                break
            time.sleep(0.5)
        assert up is not None and rules is not None
        assert [r["value"][1] for r in up["data"]["result"]] == ["1"], f"target not up: {up}"
        evaluated = [r for g in rules["data"]["groups"] for r in g["rules"]]
        expected = len(_rule_exprs())
        assert len(evaluated) == expected
        broken = [(r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"]
        assert not broken, broken
        firing = [r["name"] for r in evaluated if r["state"] == "firing"]
        assert "PrognosDown" not in firing and "PrognosNotReady" not in firing
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=30)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
