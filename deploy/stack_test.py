"""The compose stack's services, run here without an image registry.

deploy/compose.yaml needs the postgres, prometheus and grafana images, which cannot be pulled on a
machine with no registry access. This runs the same layout with what the machine has:

- the prognos runtime image (podman), ``--memory 600m``, host network, configured only through
  PROGNOS_* variables, its fleet database in
- PostgreSQL 15 from Debian's server binaries (``PROGNOS_DATABASE_URL``), and scraped by
- Prometheus from Debian's package with deploy/prometheus/prometheus.yml and alerts.yml (target and
  intervals rewritten for a short test);

then checks: readings ingested through the container land in PostgreSQL, Prometheus' target is up,
every alert rule evaluates without error. Grafana is not run (no Debian package): its dashboard's
metric names are checked against a live /metrics by tests/deploy/test_monitoring.py.

    .venv/bin/python deploy/stack_test.py [--image localhost/prognos:latest] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from smoke_test import ADMIN_TOKEN, Engine, Fleet, SmokeFailure, check, free_port, train_tiny_bundle  # noqa: E402


def wait_for(what: str, probe, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.5)
    raise SmokeFailure(f"{what}: not within {timeout_s:.0f} s (last: {last})")


def run(args: argparse.Namespace) -> None:
    from tests.integration.conftest_pg import postgres_unavailable_reason, start_postgres

    reason = postgres_unavailable_reason()
    if reason is not None:
        raise SmokeFailure(f"PostgreSQL 15: {reason}")
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        raise SmokeFailure("prometheus not installed (Debian package prometheus)")
    engine = Engine(args.engine)
    work = Path(tempfile.mkdtemp(prefix="prognos-stack-"))
    name = f"prognos-stack-{uuid.uuid4().hex[:8]}"
    pg = prom = None
    try:
        bundle = Path(shutil.copytree(args.bundle, work / "bundle")) if args.bundle else train_tiny_bundle(
            work / "bundle")
        for path in (work, bundle, *bundle.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)

        pg = start_postgres()
        url = pg.create_database("prognos")
        print(f"PostgreSQL 15 (Debian binaries) on 127.0.0.1:{pg.port}")

        http_port, grpc_port = free_port(), free_port()
        engine("run", "-d", "--name", name, *engine.run_flags, "--network", "host",
               "--memory", "600m", "--memory-swap", "600m",
               "-v", f"{bundle}:/bundle:ro", "-e", "PROGNOS_BUNDLE=/bundle",
               "-e", f"PROGNOS_DATABASE_URL={url}", "-e", f"PROGNOS_ADMIN_TOKEN={ADMIN_TOKEN}",
               "-e", "PROGNOS_HOST=127.0.0.1", "-e", f"PROGNOS_HTTP_PORT={http_port}",
               "-e", f"PROGNOS_GRPC_PORT={grpc_port}", "-e", "PROGNOS_LOG_SAMPLE_RATE=0", args.image)
        base = f"http://127.0.0.1:{http_port}"
        wait_for("prognos /ready", lambda: httpx.get(f"{base}/ready", timeout=2).status_code == 200)
        print(f"prognos container {name} ready on {base}")

        fleet = Fleet.make(5)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for k in range(5):
                r = client.post(f"/api/v1/engines/stack-{k}/readings", json=[fleet.stream(k, t) for t in range(30)])
                if r.status_code not in (200, 201):
                    raise SmokeFailure(f"ingest stack-{k}: HTTP {r.status_code} {r.text[:300]}")
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres dbname=prognos") as conn:
            rows = conn.execute("select count(*) from readings where engine_id like 'stack-%'").fetchone()
        check(rows is not None and rows[0] == 150,
              f"the container's readings are in PostgreSQL 15: {rows[0] if rows else 0} rows in readings")

        config = yaml.safe_load((HERE / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="2s", evaluation_interval="2s")
        config["rule_files"] = [str(HERE / "prometheus" / "alerts.yml")]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{http_port}"]}]
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom_port = free_port()
        prom_log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed below
        prom = subprocess.Popen([prometheus, f"--config.file={work / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=prom_log, stderr=subprocess.STDOUT)
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def target_up() -> list[dict[str, object]]:
            targets = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
            return [t for t in targets if t["labels"]["job"] == "prognos" and t["health"] == "up"]

        up = wait_for("Prometheus target prognos up", target_up)
        check(True, f"Prometheus (Debian) scrapes the prognos container: target {up[0]['scrapeUrl']} is up")

        def rules_evaluated() -> list[dict[str, object]]:
            groups = httpx.get(f"{api}/rules", timeout=2).json()["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(str(r.get("lastEvaluation", "")).startswith("20") for r in rules) else []

        rules = wait_for("every alert rule evaluated", rules_evaluated)
        broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        check(not broken, f"{len(rules)} alert rules evaluate without error against the live series {broken or ''}")
        value = httpx.get(f"{api}/query", params={"query": 'prognos_ready{job="prognos"}'}, timeout=5).json()
        check([r["value"][1] for r in value["data"]["result"]] == ["1"], "prognos_ready == 1 as Prometheus sees it")
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(timeout=30)
        engine.force_remove(name)
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="localhost/prognos:latest")
    p.add_argument("--engine", default="podman")
    p.add_argument("--bundle", type=Path, default=None)
    args = p.parse_args()
    try:
        run(args)
    except SmokeFailure as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    print("stack test passed (compose services from Debian packages: PostgreSQL 15, Prometheus)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
