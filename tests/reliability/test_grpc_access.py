"""gRPC is held to the same access rule as REST, on the real ``prognos serve`` (fleet keys, one
access check): writes need an operator key in ``authorization: Bearer`` metadata, predictions take
an optional key, the rate limit applies; and the TLS/HTTPS settings work with a certificate made
here (self-signed, for 127.0.0.1)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import grpc
import httpx
import pytest

from prognos.errors import OverloadedError, PermissionDeniedError, UnauthenticatedError
from prognos.serving.grpc.client import RulClient
from tests.reliability.conftest import ADMIN, serve
from tests.unit.serving.factory import readings


def _ingest(client: RulClient, bundle: Path, engine: str = "g1", start: int = 0) -> int:
    counts = client.ingest([{"engine_id": engine, "sensor_data": readings(bundle, 5, start=start)}])
    return counts.accepted


def test_ingest_readings_needs_an_operator_key(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0") as server:
        viewer, operator = server.key("viewer"), server.key("operator")
        with RulClient(server.grpc_target) as anonymous, pytest.raises(UnauthenticatedError):
            _ingest(anonymous, tiny_bundle)
        with RulClient(server.grpc_target, api_key="not-a-key") as unknown, pytest.raises(UnauthenticatedError):
            _ingest(unknown, tiny_bundle)
        with RulClient(server.grpc_target, api_key=viewer) as weak, pytest.raises(PermissionDeniedError):
            _ingest(weak, tiny_bundle)
        with server.client() as c:  # nothing of the refused calls was stored
            assert c.get("/api/v1/engines/g1").status_code == 404
        with RulClient(server.grpc_target, api_key=operator) as client:
            assert _ingest(client, tiny_bundle) == 5
        with server.client(viewer) as c:
            assert c.get("/api/v1/engines/g1/readings").json()["total"] == 5


def test_grpc_predictions_follow_the_rest_rule_and_the_rate_limit(tmp_path: Path, tiny_bundle: Path) -> None:
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0.1", rate_limit_burst="2",
               anonymous_rate_limit_per_s="0.1", anonymous_rate_limit_burst="2") as server:
        rows = readings(tiny_bundle, 25)
        with RulClient(server.grpc_target) as anonymous:  # no key: allowed, limited by address
            assert anonymous.predict("p1", rows).engine_id == "p1"
            assert anonymous.predict("p1", rows).engine_id == "p1"
            # RESOURCE_EXHAUSTED, with the server's pushback; the client knows it as OverloadedError
            with pytest.raises(OverloadedError, match=r"rate limit .* exceeded; retry after") as err:
                anonymous.predict("p1", rows)
            assert err.value.retry_after_s >= 1
        with RulClient(server.grpc_target, api_key="not-a-key") as unknown, pytest.raises(UnauthenticatedError):
            unknown.predict("p1", rows)
        operator = server.key("operator")
        with RulClient(server.grpc_target, api_key=operator) as client:  # its own bucket
            assert _ingest(client, tiny_bundle, "g2") == 5
            client.predict("p1", rows)
            with pytest.raises(OverloadedError, match="rate limit"):
                _ingest(client, tiny_bundle, "g2", start=5)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key (PEM), made with ``cryptography``."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def test_tls_for_grpc_and_https_for_rest(tmp_path: Path, tiny_bundle: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with serve(tmp_path / "srv", tiny_bundle, tls_cert_file=str(cert), tls_key_file=str(key),
               rate_limit_per_s="0") as server:
        assert server.url.startswith("https://")
        r = httpx.get(f"{server.url}/ready", verify=ssl.create_default_context(cafile=str(cert)), timeout=10)
        assert r.status_code == 200
        with pytest.raises(httpx.TransportError):  # plain HTTP on the HTTPS port is not answered as HTTP
            httpx.get(server.url.replace("https://", "http://") + "/ready", timeout=5).raise_for_status()
        with RulClient(server.grpc_target, api_key=ADMIN, root_certificates=cert.read_bytes()) as client:
            assert _ingest(client, tiny_bundle, "tls1") == 5
            assert client.predict("tls1", readings(tiny_bundle, 25)).engine_id == "tls1"
        # A plaintext client gets no service.
        with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.FutureTimeoutError):
            grpc.channel_ready_future(channel).result(timeout=2)
