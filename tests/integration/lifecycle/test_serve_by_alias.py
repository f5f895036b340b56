"""Lifecycle, end to end over real sockets: train v1 → register → approve → promote → `prognos serve
--model production` → train v2 → register (an unapproved promotion is refused) → approve → promote →
rollback. The server follows the alias each time under continuous load, without one failed request.

The registry is a local directory, and S3 served by moto's HTTP server on a free 127.0.0.1 port.
(Shadow canary is the canary work's part of this flow and is not exercised here.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from prognos.bundle import read_bundle
from prognos.lifecycle.registry import NotApprovedError, Registry, open_registry
from tests.integration.lifecycle.server import Load, free_port, wait_for

BUCKET = "prognos-lifecycle-it"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def v2_bundle(synthetic_readings, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A second, independently trained model (another seed)."""
    pytest.importorskip("torch")
    from prognos.training.config import TrainConfig
    from prognos.training.run import train_bundle_from_readings

    out = tmp_path_factory.mktemp("v2") / "v2"
    cfg = TrainConfig(model="tcn", folds=2, epochs=2, patience=2, window=20, holdout=0.0, threads=1, seed=1,
                      serve="ensemble")
    train_bundle_from_readings(synthetic_readings, "SYNTH", out, cfg, log=lambda m: None)
    return out


@dataclass(frozen=True)
class RegistryLocation:
    url: str
    env: dict[str, str]
    s3_client: object | None = None


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RegistryLocation]:
    if request.param == "local":
        yield RegistryLocation(str(tmp_path / "registry"), {})
        return
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        yield RegistryLocation(f"s3://{BUCKET}/models/rul", {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}, client)
    finally:
        server.stop()


def _serve(workdir: Path, loc: RegistryLocation, *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROGNOS_", "AWS_"))}
    env.update(PROGNOS_DATA_DIR=str(workdir / "data"), PROGNOS_REGISTRY_DIR=loc.url, PROGNOS_REGISTRY_POLL_S="0.1",
               PROGNOS_LOG_SAMPLE_RATE="0", PROGNOS_SHUTDOWN_GRACE_S="5", **loc.env,
               # anonymous predict load; the per-address limit itself is tested in tests/reliability
               PROGNOS_ANONYMOUS_RATE_LIMIT_PER_S="100000", PROGNOS_ANONYMOUS_RATE_LIMIT_BURST="100000")
    log = workdir / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "prognos.cli", "serve", "--http-port", str(port),
                                 "--grpc-port", str(free_port()), *args], cwd=workdir, env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    return proc, port, log


def test_serve_by_alias_follows_promote_and_rollback_without_failed_requests(
    location: RegistryLocation, tiny_bundle: Path, v2_bundle: Path, tmp_path: Path,
) -> None:
    registry: Registry = open_registry(location.url, tmp_path / "cli-cache", s3_client=location.s3_client)
    v1_name, v2_name = read_bundle(tiny_bundle).version, read_bundle(v2_bundle).version
    assert v1_name != v2_name
    assert registry.register(tiny_bundle).version.version == 1
    registry.approve(1, actor="qa")
    registry.promote(1)

    proc, port, log = _serve(tmp_path, location, "--model", "production")
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}:\n{log.read_text()}")
            try:
                return httpx.get(f"{url}/ready", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, "the server to be ready")
        assert httpx.get(f"{url}/ready").json()["model_version"] == v1_name
        load = Load(url, tiny_bundle, min_readings=5)
        clients = [threading.Thread(target=load.run, args=(k,)) for k in range(3)]
        for t in clients:
            t.start()
        try:
            wait_for(lambda: len(load.seen) >= 20, "first responses")

            # v2 registered but not approved: it cannot reach production; the server keeps v1
            assert registry.register(v2_bundle).version.version == 2
            with pytest.raises(NotApprovedError):
                registry.promote(2)
            mark = len(load.seen)
            wait_for(lambda: len(load.seen) >= mark + 30, "responses after the refused promotion")
            assert {v for _, v in load.seen[mark:]} == {v1_name}

            registry.approve(2, actor="qa")
            registry.promote(2)
            wait_for(lambda: load.latest() == v2_name, "the server to follow the promotion to v2")
            mark = len(load.seen)
            wait_for(lambda: len(load.seen) >= mark + 20, "responses from v2")

            registry.rollback()
            wait_for(lambda: load.latest() == v1_name, "the server to follow the rollback to v1")
            mark = len(load.seen)
            wait_for(lambda: len(load.seen) >= mark + 20, "responses after the rollback")
        finally:
            load.stop.set()
            for t in clients:
                t.join(30)
        failed = [s for s in load.seen if s[0] != 200]
        assert not failed, failed[:5]
        # the served version went v1 → v2 → v1
        changes = [v for i, (_, v) in enumerate(load.seen) if i == 0 or load.seen[i - 1][1] != v]
        assert changes[0] == v1_name and changes[-1] == v1_name and v2_name in changes
        assert httpx.get(f"{url}/ready").json()["model_version"] == v1_name
        assert "following model alias 'production'" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(15)


def test_serve_refuses_an_unset_alias_and_conflicting_options(tmp_path: Path, tiny_bundle: Path) -> None:
    loc = RegistryLocation(str(tmp_path / "registry"), {})
    proc, _, log = _serve(tmp_path, loc, "--model", "production")
    assert proc.wait(60) == 5
    assert "alias 'production' is not set" in log.read_text() and "Traceback" not in log.read_text()
    proc, _, log = _serve(tmp_path, loc, "--model", "production", "--bundle", str(tiny_bundle))
    assert proc.wait(60) == 2
    assert "pass --bundle or --model, not both" in log.read_text()
