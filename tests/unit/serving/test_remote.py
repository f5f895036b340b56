from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from prognos.config import Settings
from prognos.errors import ValidationError
from prognos.serving.predictor import Predictor
from prognos.serving.remote import RemotePredictor
from prognos.serving.service import PredictionService
from tests.unit.serving.factory import readings

ENDPOINT = "prognos-fd001"


def client() -> Any:
    return boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


def stream(payload: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(payload), len(payload))


def remote_answer(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"engine_id": "e1", "predicted_rul": 77.0, "lower": 60.0, "upper": 90.0, "confidence_level": 0.9,
            "model_version": "remote-v9", "status": "healthy", "timestamp": "2026-01-01T00:00:00Z",
            "last_cycle": rows[-1]["cycle"]}


def test_remote_answer_is_used_when_the_endpoint_works(settings: Settings, predictor: Predictor,
                                                       tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 20)
    c = client()
    with Stubber(c) as stub:
        expected = {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json",
                    "Body": json.dumps({"engine_id": "e1", "sensor_data": rows}).encode()}
        stub.add_response("invoke_endpoint", {"Body": stream(json.dumps(remote_answer(rows)).encode()),
                                              "ContentType": "application/json"}, expected)
        out = asyncio.run(RemotePredictor(ENDPOINT, PredictionService(settings, predictor), c).predict("e1", rows))
        stub.assert_no_pending_responses()
    assert out.source == "remote" and out.fallback_reason is None
    assert out.body["model_version"] == "remote-v9" and out.body["predicted_rul"] == 77.0


@pytest.mark.parametrize("failure", ["client_error", "not_a_prediction", "not_json"])
def test_falls_back_to_the_local_model(settings: Settings, predictor: Predictor, tiny_bundle: Path,
                                       failure: str) -> None:
    rows = readings(tiny_bundle, 20)
    local = PredictionService(settings, predictor)
    c = client()
    with Stubber(c) as stub:
        if failure == "client_error":
            stub.add_client_error("invoke_endpoint", "ModelError", "the model container crashed", 424)
        elif failure == "not_a_prediction":
            stub.add_response("invoke_endpoint", {"Body": stream(b'{"oops": 1}')})
        else:
            stub.add_response("invoke_endpoint", {"Body": stream(b"<html>")})
        out = asyncio.run(RemotePredictor(ENDPOINT, local, c).predict("e1", rows))
    want = asyncio.run(PredictionService(settings, predictor).predict("e1", rows)).to_dict()
    assert out.source == "local" and out.fallback_reason
    assert out.body["model_version"] == predictor.version
    assert out.body["predicted_rul"] == want["predicted_rul"]


def test_a_slow_endpoint_times_out_to_the_local_model(settings: Settings, predictor: Predictor,
                                                      tiny_bundle: Path) -> None:
    class Slow:
        def invoke_endpoint(self, **kw: Any) -> dict[str, Any]:
            time.sleep(1.0)
            raise AssertionError("should have timed out")

    remote = RemotePredictor(ENDPOINT, PredictionService(settings, predictor), Slow(), timeout_s=0.1)

    async def timed() -> float:
        started = time.perf_counter()
        out = await remote.predict("e1", readings(tiny_bundle, 20))
        assert out.source == "local" and "Timeout" in (out.fallback_reason or "")
        return time.perf_counter() - started

    assert asyncio.run(timed()) < 0.9  # answered by the local model long before the endpoint would


def test_bad_input_is_refused_before_any_remote_call(settings: Settings, predictor: Predictor,
                                                     tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 5)
    rows[1] = {**rows[1], "s99": 1.0}
    c = client()
    with Stubber(c) as stub, pytest.raises(ValidationError, match=r"sensor_data\[1\]\.s99: unknown field"):
        asyncio.run(RemotePredictor(ENDPOINT, PredictionService(settings, predictor), c).predict("e1", rows))
    stub.assert_no_pending_responses()


def test_from_settings_builds_a_client_only_when_an_endpoint_is_set(predictor: Predictor) -> None:
    from prognos.config import get_settings

    local = PredictionService(get_settings(), predictor)
    assert RemotePredictor.from_settings(get_settings(), local) is None
    remote = RemotePredictor.from_settings(
        get_settings(sagemaker_endpoint="prognos-prod", aws_region="eu-west-1", sagemaker_timeout_s=0.5), local)
    assert remote is not None and remote.endpoint_name == "prognos-prod" and remote.timeout_s == 0.5
    assert remote.client.meta.region_name == "eu-west-1"
