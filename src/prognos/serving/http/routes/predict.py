"""``/api/v1/predict`` and ``/api/v1/predict/batch``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from prognos.data.validation import check_engine_id, clip, parse_json_off_loop
from prognos.errors import ValidationError
from prognos.serving.http.auth import optional_key
from prognos.serving.http.deps import ServiceDep, SettingsDep, log_context
from prognos.serving.http.responses import JsonResponse
from prognos.serving.http.routing import PrognosRoute
from prognos.serving.http.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse
from prognos.serving.service import PredictionService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["predictions"], route_class=PrognosRoute)

_ERRORS: dict[int | str, dict[str, str]] = {
    422: {"description": "a field is missing, unknown, not a finite number, out of range, ..."},
    503: {"description": "no model loaded, or overloaded (see Retry-After)"},
}

Explain = Annotated[bool, Query(description="also explain the prediction: each input channel's contribution "
                                "(cycles) and each time span's, the method, the baseline and how they add up "
                                "(prognos.serving.explain); costs one model call on a few dozen windows")]


async def _predict_body(raw: bytes) -> tuple[str, Any]:
    """Parse and shape-check a predict body by hand; the readings go to the one validator."""
    body = await parse_json_off_loop(raw)
    if not isinstance(body, dict):
        raise ValidationError("body: expected an object with engine_id and sensor_data")
    for key in body:
        if key not in ("engine_id", "sensor_data"):
            raise ValidationError(f"{clip(key)}: unknown field")
    engine_id = body.get("engine_id")
    if engine_id is None:
        raise ValidationError("engine_id: missing (required)")
    check_engine_id(engine_id)
    if "sensor_data" not in body:
        raise ValidationError("sensor_data: missing (required)")
    return engine_id, body["sensor_data"]


# The hot path parses its body by hand: FastAPI's body model and dependency machinery cost more
# per request than validation and the model call together. The OpenAPI schema is still the model's.
@router.post("/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra={"requestBody": {
    "required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}})
async def predict(request: Request, explain: Explain = False) -> Response:
    """Predict one engine's remaining useful life (cycles) with its interval. An API key is
    optional: with one, the key's rate limit applies; without, the client address's."""
    optional_key(request)
    service: PredictionService = request.app.state.service
    engine_id, readings = await _predict_body(await request.body())
    log_context(request, engine_id=engine_id, model_version=service.model_version)
    served = await service.predict(engine_id, readings, "sensor_data", explain=explain)
    return JsonResponse(served.to_dict())


@router.post("/predict/batch", response_model=BatchPredictResponse, responses=_ERRORS)
async def predict_batch(body: BatchPredictRequest, request: Request, service: ServiceDep,
                        settings: SettingsDep, explain: Explain = False) -> Response:
    """Predict many engines at once (one model call for the lot); responses keep request order.
    An API key is optional, as for a single prediction."""
    optional_key(request)
    n = len(body.requests)
    if n == 0:
        raise ValidationError("requests: is empty; send at least one request")
    if n > settings.max_batch_requests:
        raise ValidationError(f"requests: {n} requests exceed the limit of {settings.max_batch_requests}")
    log_context(request, engines=n, model_version=service.model_version)
    for i, r in enumerate(body.requests):
        check_engine_id(r.engine_id, f"requests[{i}].engine_id")
    served = await service.predict_many([(r.engine_id, r.sensor_data) for r in body.requests], "requests",
                                        explain=explain)
    return JsonResponse({"responses": [s.to_dict() for s in served]})
