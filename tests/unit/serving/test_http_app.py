from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI

from prognos.config import Settings
from prognos.errors import ConflictError
from prognos.serving.http import create_app
from prognos.serving.http.auth import Principal, Role, TokenAuthenticator, require
from prognos.serving.predictor import Predictor
from prognos.serving.service import PredictionService
from tests.unit.serving.asgi import call
from tests.unit.serving.factory import body


class Viewers:
    """An authenticator in the fleet engineer's style: every known token is a viewer."""

    def authenticate(self, token: str | None) -> Principal | None:
        return Principal("v", Role.VIEWER) if token == "view" else None


def test_token_authenticator_admits_only_the_admin_token() -> None:
    auth = TokenAuthenticator("s3cret")
    assert auth.authenticate("s3cret") == Principal("admin", Role.ADMIN)
    assert auth.authenticate("s3cre") is None and auth.authenticate(None) is None
    assert TokenAuthenticator(None).authenticate("") is None
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN


def test_reload_needs_an_admin(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    service = PredictionService(settings, predictor)
    app = create_app(settings, service, TokenAuthenticator("s3cret"))
    r = call(app, "POST", "/api/v1/models/reload", json={"bundle": str(tiny_bundle)})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = call(app, "POST", "/api/v1/models/reload", json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = call(app, "POST", "/api/v1/models/reload", json={"bundle": str(tiny_bundle)},
             headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == predictor.version and service.counters.reloads == 1

    viewer_app = create_app(settings, service, Viewers())
    r = call(viewer_app, "POST", "/api/v1/models/reload", json={}, headers={"Authorization": "Bearer view"})
    assert r.status_code == 403 and "needs admin" in r.json()["detail"]


def test_extra_routers_share_the_error_mapping(settings: Settings, predictor: Predictor) -> None:
    router = APIRouter()

    @router.get("/fleet/conflict")
    async def conflict() -> None:
        raise ConflictError("reading 7 of engine e1 contradicts the stored one")

    @router.get("/fleet/bug")
    async def bug() -> None:
        raise RuntimeError("secret internals")

    @router.get("/fleet/operators-only", dependencies=[Depends(require(Role.OPERATOR))])
    async def operators() -> dict[str, str]:
        return {"ok": "yes"}

    app = create_app(settings, PredictionService(settings, predictor), Viewers(), [router])
    r = call(app, "GET", "/fleet/conflict")
    assert r.status_code == 409
    assert r.json() == {"error": "ConflictError", "detail": "reading 7 of engine e1 contradicts the stored one"}
    r = call(app, "GET", "/fleet/bug")
    assert r.status_code == 500 and "secret" not in r.text
    assert call(app, "GET", "/fleet/operators-only", headers={"Authorization": "Bearer view"}).status_code == 403
    r = call(app, "GET", "/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "HTTPError"


def test_without_a_model_predict_is_503_and_not_ready(settings: Settings, tiny_bundle: Path) -> None:
    app = create_app(settings, PredictionService(settings), TokenAuthenticator(None))
    assert call(app, "GET", "/ready").status_code == 503
    assert call(app, "GET", "/health").status_code == 200
    r = call(app, "POST", "/api/v1/predict", json=body(tiny_bundle))
    assert r.status_code == 503 and r.json()["error"] == "ModelUnavailableError"


def test_each_app_has_its_own_metrics_registry(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    a = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator(None))
    b = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator(None))
    assert call(a, "POST", "/api/v1/predict", json=body(tiny_bundle)).status_code == 200
    text_a, text_b = call(a, "GET", "/metrics").text, call(b, "GET", "/metrics").text
    line = 'prognos_http_requests_total{method="POST",route="/api/v1/predict",status="200"} 1.0'
    assert line in text_a and line not in text_b
    assert "prognos_predictions_total 1.0" in text_a and "prognos_predictions_total 0.0" in text_b
    assert f'prognos_model_info{{version="{predictor.version}"}} 1.0' in text_a
    assert 'prognos_batch_size_bucket{le="1"} 1.0' in text_a


@pytest.mark.parametrize("header", ["abc-123", None])
def test_request_id_is_echoed_or_made(settings: Settings, predictor: Predictor, header: str | None) -> None:
    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator(None))
    r = call(app, "GET", "/health", headers={"X-Request-ID": header} if header else {})
    assert r.headers["x-request-id"] == (header or r.headers["x-request-id"]) and len(r.headers["x-request-id"]) >= 7


def test_requests_past_the_in_flight_cap_get_a_fast_503_and_probes_still_answer(
        predictor: Predictor, tiny_bundle: Path) -> None:
    import asyncio

    import httpx

    from prognos.config import get_settings

    settings = get_settings(http_max_in_flight=2)
    gate = asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        await gate.wait()
        return {"done": "yes"}

    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator(None), [router])

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            held = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
            for _ in range(5000):  # until both are inside the app (at most ~5 s)
                if await _in_flight(app) == 2:
                    break
                await asyncio.sleep(0.001)
            refused = await client.post("/api/v1/predict", json=body(tiny_bundle))
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"] == "OverloadedError"
            # probes are exempt (they answer) and /ready tells the truth: every slot is taken
            assert (await client.get("/health")).status_code == 200
            ready = await client.get("/ready")
            assert ready.status_code == 503 and "overloaded: 2 requests in flight" in ready.json()["reasons"][0]
            gate.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
            assert (await client.post("/api/v1/predict", json=body(tiny_bundle))).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert "prognos_http_refused_total 1.0" in metrics

    asyncio.run(scenario())


async def _in_flight(app: FastAPI) -> int:
    return int(app.state.in_flight.count)


def test_ready_runs_its_probes_at_once_and_gives_up_on_each_after_1_s(settings: Settings,
                                                                       predictor: Predictor) -> None:
    """Issue 19: under overload /ready took longer than its own probe's timeout (3 s, probes one
    after another). Here the first probe answers only once the second has started: run one after
    another, both would fail; run at once, only the second (which never answers) does, after 1 s."""
    import asyncio

    app = create_app(settings, PredictionService(settings, predictor), TokenAuthenticator(None))
    assert call(app, "GET", "/ready").status_code == 200
    second_started = asyncio.Event()

    async def first() -> str | None:
        await second_started.wait()
        return None

    async def second() -> str | None:
        second_started.set()
        await asyncio.sleep(3600)
        return None

    app.state.readiness_probes += [first, second]
    r = call(app, "GET", "/ready")
    assert r.status_code == 503
    assert r.json()["reasons"] == ["readiness probe did not answer within 1 s"]
