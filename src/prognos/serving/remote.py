"""An optional remote predictor: ask a SageMaker endpoint, fall back to the local model.

The planning documents deploy models to SageMaker endpoints and keep a local fallback. The
request is validated locally first (bad input is the caller's error, never a reason to fall
back); then the endpoint is called through boto3 ``sagemaker-runtime`` ``invoke_endpoint`` with the
REST predict body. Any failure — AWS error, network error, timeout, an answer that is not a
prediction — is logged and answered by the local :class:`PredictionService` instead.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

from prognos.config import Settings
from prognos.serving.http.schemas import PredictResponse
from prognos.serving.logs import get_logger
from prognos.serving.service import PredictionService

__all__ = ["RemotePredictor", "RoutedPrediction"]

log = get_logger("prognos.serving.remote")


@dataclass(frozen=True)
class RoutedPrediction:
    """The REST response body, where it came from, and why the remote was not used (if it was not)."""

    body: dict[str, Any]
    source: Literal["remote", "local"]
    fallback_reason: str | None = None


class RemotePredictor:
    """``timeout_s`` (seconds) bounds each endpoint call, connection and read alike (no retries:
    the local model is the retry)."""

    def __init__(self, endpoint_name: str, local: PredictionService, client: Any = None, *,
                 timeout_s: float = 1.0, region: str | None = None) -> None:
        self.endpoint_name, self.local, self.timeout_s = endpoint_name, local, timeout_s
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("sagemaker-runtime", region_name=region, config=Config(
                connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}))
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings, local: PredictionService) -> RemotePredictor | None:
        """The remote predictor ``PROGNOS_SAGEMAKER_ENDPOINT`` asks for (None when it is unset)."""
        if not settings.sagemaker_endpoint:
            return None
        return cls(settings.sagemaker_endpoint, local, timeout_s=settings.sagemaker_timeout_s,
                   region=settings.aws_region)

    def _invoke(self, payload: bytes) -> dict[str, Any]:
        response = self.client.invoke_endpoint(EndpointName=self.endpoint_name, ContentType="application/json",
                                               Accept="application/json", Body=payload)
        body = json.loads(response["Body"].read())
        return PredictResponse.model_validate(body).model_dump()

    async def predict(self, engine_id: str, readings: Any, where: str = "sensor_data") -> RoutedPrediction:
        """Raises :class:`~prognos.errors.ValidationError` for bad input (never sent anywhere)."""
        self.local.predictor.validate(readings, where)
        payload = json.dumps({"engine_id": engine_id, "sensor_data": readings}).encode()
        try:
            body = await asyncio.wait_for(asyncio.to_thread(self._invoke, payload), self.timeout_s)
            return RoutedPrediction(body, "remote")
        except (Exception, TimeoutError) as exc:  # whatever went wrong remotely, the local model answers
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if isinstance(exc, pydantic.ValidationError):
                reason = "the endpoint's answer is not a prediction"
            log.warning("remote endpoint failed; local fallback", endpoint=self.endpoint_name, engine_id=engine_id,
                        reason=reason)
            served = await self.local.predict(engine_id, readings, where)
            return RoutedPrediction(served.to_dict(), "local", reason)
