"""``/api/v1/predict`` and ``/api/v1/predict/batch``."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from prognos.errors import ValidationError
from prognos.serving.http.deps import ServiceDep, SettingsDep, log_context
from prognos.serving.http.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["predictions"])

_ERRORS: dict[int | str, dict[str, str]] = {
    422: {"description": "a field is missing, unknown, not a finite number, out of range, ..."},
    503: {"description": "no model loaded, or overloaded (see Retry-After)"},
}


def _json(body: object) -> Response:
    # Serialised by hand: the body is already plain JSON types; re-validating it against the
    # response model would cost more than the model call.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.post("/predict", response_model=PredictResponse, responses=_ERRORS)
async def predict(body: PredictRequest, request: Request, service: ServiceDep) -> Response:
    """Predict one engine's remaining useful life (cycles) with its interval."""
    log_context(request, engine_id=body.engine_id, model_version=service.model_version)
    served = await service.predict(body.engine_id, body.sensor_data, "sensor_data")
    return _json(served.to_dict())


@router.post("/predict/batch", response_model=BatchPredictResponse, responses=_ERRORS)
async def predict_batch(body: BatchPredictRequest, request: Request, service: ServiceDep,
                        settings: SettingsDep) -> Response:
    """Predict many engines at once (one model call for the lot); responses keep request order."""
    n = len(body.requests)
    if n == 0:
        raise ValidationError("requests: is empty; send at least one request")
    if n > settings.max_batch_requests:
        raise ValidationError(f"requests: {n} requests exceed the limit of {settings.max_batch_requests}")
    log_context(request, engines=n, model_version=service.model_version)
    served = await service.predict_many([(r.engine_id, r.sensor_data) for r in body.requests], "requests")
    return _json({"responses": [s.to_dict() for s in served]})
