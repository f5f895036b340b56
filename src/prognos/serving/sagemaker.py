"""The SageMaker inference-container contract (``prognos serve --sagemaker``), so the same image
runs as a SageMaker endpoint: ``GET /ping`` (200 when the model is ready) and
``POST /invocations`` on port 8080.

``/invocations`` bodies:

* ``application/json``: the REST predict body ``{"engine_id": ..., "sensor_data": [...]}`` or the
  batch body ``{"requests": [...]}``; the answer is the matching REST response.
* ``text/csv``: one reading per row under a header naming the fields (``cycle``, ``s2``, ...); an
  optional ``engine_id`` column groups rows into engines (first appearance order; without it the
  whole file is engine ``"0"``). Empty cells are missing values. The answer is JSON
  ``{"responses": [...]}``, or CSV rows when the request sends ``Accept: text/csv``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from starlette.responses import Response

from prognos.config import Settings
from prognos.errors import ValidationError
from prognos.serving.http.errors import install_error_handlers
from prognos.serving.http.responses import JsonResponse
from prognos.serving.http.schemas import BatchPredictRequest, PredictRequest
from prognos.serving.service import PredictionService

__all__ = ["create_sagemaker_app", "parse_csv"]

_CSV_COLUMNS = ("engine_id", "last_cycle", "predicted_rul", "lower", "upper", "confidence_level", "status",
                "model_version")


def _pydantic_message(exc: pydantic.ValidationError) -> str:
    err = exc.errors()[0]
    path = ""
    for p in err["loc"]:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else str(p))
    msg = {"missing": "missing (required)", "extra_forbidden": "unknown field"}.get(err["type"], err["msg"])
    return f"{path or 'body'}: {msg}"


def parse_csv(text: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """CSV with a header row -> [(engine_id, readings)]. Raises ValidationError naming row and column."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ValidationError("body: CSV needs a header row naming the fields and at least one reading")
    header = [h.strip() for h in rows[0]]
    engines: dict[str, list[dict[str, Any]]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValidationError(f"body: CSV row {n} has {len(row)} cells, the header has {len(header)}")
        reading: dict[str, Any] = {}
        engine = "0"
        for name, cell in zip(header, row, strict=True):
            cell = cell.strip()
            if name == "engine_id":
                engine = cell or engine
            elif cell:
                try:
                    value = float(cell)
                except ValueError:
                    raise ValidationError(f"body: CSV row {n}, column {name}: {cell!r} is not a number") from None
                reading[name] = int(value) if name == "cycle" and value.is_integer() else value
            else:
                reading[name] = None
        engines.setdefault(engine, []).append(reading)
    return list(engines.items())


def _csv_response(rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.get(c, "") for c in _CSV_COLUMNS])
    return Response(out.getvalue(), media_type="text/csv")


def create_sagemaker_app(settings: Settings, service: PredictionService) -> FastAPI:
    app = FastAPI(title="prognos (SageMaker container)", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.service = settings, service
    install_error_handlers(app)

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200 if service.ready else 503)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        raw = await request.body()
        batch: bool
        if content_type == "text/csv":
            try:
                items = parse_csv(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValidationError("body: CSV is not UTF-8 text") from None
            batch = True
            where = "requests"
        elif content_type in ("application/json", ""):
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValidationError(f"body: not valid JSON ({exc})") from None
            try:
                if isinstance(data, dict) and "requests" in data:
                    body = BatchPredictRequest.model_validate(data)
                    items, batch, where = [(r.engine_id, r.sensor_data) for r in body.requests], True, "requests"
                else:
                    one = PredictRequest.model_validate(data)
                    items, batch, where = [(one.engine_id, one.sensor_data)], False, "sensor_data"
            except pydantic.ValidationError as exc:
                raise ValidationError(_pydantic_message(exc)) from None
        else:
            raise ValidationError(f"content-type: {content_type!r} is not supported (application/json or text/csv)")
        if not items:
            raise ValidationError("requests: is empty; send at least one request")
        if len(items) > settings.max_batch_requests:
            raise ValidationError(f"requests: {len(items)} requests exceed the limit of {settings.max_batch_requests}")
        served = [s.to_dict() for s in await service.predict_many(items, where)]
        if "text/csv" in request.headers.get("accept", ""):
            return _csv_response(served)
        body_out: Any = {"responses": served} if batch else served[0]
        return JsonResponse(body_out)

    return app
