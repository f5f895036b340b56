"""Access control over real HTTP: API keys and roles (401/403), the admin token, key management,
per-key rate limits (429 + Retry-After), CORS, and the endpoints that stay open."""

from __future__ import annotations

import pytest

from prognos.config import Settings
from prognos.serving.service import PredictionService
from tests.integration.fleet.conftest import ADMIN_TOKEN, LiveApp, start_live_app
from tests.integration.fleet.readings import engine_readings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

READING = engine_readings()[:1]


def test_missing_or_wrong_key_is_401(live: LiveApp) -> None:
    with live.client(None) as c:
        r = c.get("/api/v1/engines")
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        assert c.post("/api/v1/engines/e1/readings", json=READING).status_code == 401
        assert c.get("/api/v1/alerts", headers={"Authorization": "Bearer pk_not-a-key"}).status_code == 401
        assert c.get("/api/v1/alerts", headers={"Authorization": "Basic abc"}).status_code == 401


def test_roles_viewer_reads_operator_ingests_admin_manages_keys(live: LiveApp) -> None:
    viewer, operator = live.key("viewer"), live.key("operator")
    with live.client(viewer) as c:
        assert c.get("/api/v1/engines").status_code == 200
        assert c.get("/api/v1/alerts").status_code == 200
        r = c.post("/api/v1/engines/e1/readings", json=READING)
        assert r.status_code == 403 and "viewer" in r.json()["detail"] and "operator" in r.json()["detail"]
        assert c.post("/api/v1/alerts/1/acknowledge").status_code == 403
    with live.client(operator) as c:
        assert c.post("/api/v1/engines/e1/readings", json=READING).status_code == 201
        assert c.post("/api/v1/alerts/999/acknowledge").status_code == 404  # allowed, but no such alert
        assert c.get("/api/v1/keys").status_code == 403
        assert c.post("/api/v1/keys", json={"role": "admin"}).status_code == 403
    with live.client(ADMIN_TOKEN) as c:  # the settings' admin token is an admin key
        assert c.get("/api/v1/keys").status_code == 200


def test_keys_are_shown_once_stored_hashed_and_revocable(live: LiveApp) -> None:
    with live.client(ADMIN_TOKEN) as c:
        r = c.post("/api/v1/keys", json={"role": "operator", "name": "line 4"})
        assert r.status_code == 201
        created = r.json()
        secret = created["key"]
        assert secret.startswith("pk_") and len(secret) > 40 and created["prefix"] == secret[:10]
        listed = c.get("/api/v1/keys")
        assert secret not in listed.text and all("key" not in k for k in listed.json()["items"])
        assert c.post("/api/v1/keys", json={"role": "boss"}).status_code == 422
    with live.client(secret) as c:
        assert c.post("/api/v1/engines/e1/readings", json=READING).status_code == 201
    # at rest: only the SHA-256 of the secret
    from sqlalchemy import text

    with live.fleet.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys WHERE id = :i"), {"i": created["id"]}).scalar()
    import hashlib

    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    with live.client(ADMIN_TOKEN) as c:
        revoked = c.delete(f"/api/v1/keys/{created['id']}").json()
        assert revoked["active"] is False
    with live.client(secret) as c:
        assert c.get("/api/v1/engines").status_code == 401


def test_health_ready_and_metrics_stay_open(live: LiveApp) -> None:
    with live.client(None) as c:
        for path in ("/health", "/ready", "/metrics"):
            assert c.get(path).status_code == 200, path


def test_rate_limit_is_per_key_429_with_retry_after(fleet_settings: Settings, service: PredictionService) -> None:
    settings = fleet_settings.model_copy(update={"rate_limit_per_s": 0.1, "rate_limit_burst": 3})
    app = start_live_app(settings, service)
    try:
        fast, other = app.key("viewer"), app.key("viewer")
        with app.client(fast) as c:
            codes = [c.get("/api/v1/engines").status_code for _ in range(4)]
            assert codes == [200, 200, 200, 429]
            r = c.get("/api/v1/engines")
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert "rate limit" in r.json()["detail"]
        with app.client(other) as c:  # another key has its own bucket
            assert c.get("/api/v1/engines").status_code == 200
    finally:
        app.stop()


def test_cors_allows_only_configured_origins(fleet_settings: Settings, service: PredictionService) -> None:
    settings = fleet_settings.model_copy(update={"cors_origins": ["https://ops.example"]})
    app = start_live_app(settings, service)
    try:
        with app.client(None) as c:
            pre = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
            ok = c.options("/api/v1/engines", headers={"Origin": "https://ops.example", **pre})
            assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://ops.example"
            bad = c.options("/api/v1/engines", headers={"Origin": "https://evil.example", **pre})
            assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
            get = c.get("/health", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in get.headers
    finally:
        app.stop()
