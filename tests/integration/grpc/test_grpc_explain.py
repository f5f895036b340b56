"""``explain`` on gRPC predict over a real socket: the REST explanation, field for field, and clients
built before the field existed keep working."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.unknown_fields import UnknownFieldSet

from prognos.serving.grpc.v1 import rul_pb2
from prognos.serving.service import PredictionService

NEW_MESSAGES = ("ChannelContribution", "SpanContribution", "Explanation")


def rest_body(service: PredictionService, engine_id: str, readings: list[dict[str, Any]]) -> dict[str, Any]:
    body = asyncio.run(service.predict(engine_id, readings, explain=True)).to_dict()
    body.pop("timestamp")
    return body


def test_predict_with_explain_answers_the_rest_explanation(shared_server, engines, predictor):
    body = engines[0]
    readings = body["sensor_data"][:45]
    with shared_server.client() as client:
        plain = client.predict(body["engine_id"], readings)
        p = client.predict(body["engine_id"], readings, explain=True)
    assert plain.explanation is None and "explanation" not in plain.to_dict()
    e = p.explanation
    assert e is not None and e["method"] == "occlusion"
    assert len(e["contributions"]) == predictor.pipeline.n_features
    assert e["spans"][-1]["last_cycle"] == readings[-1]["cycle"]
    got = p.to_dict()
    got.pop("timestamp")
    # Rounded to 3 decimals on the server, carried exactly by the doubles of the message.
    assert got == rest_body(PredictionService(shared_server.settings, predictor), body["engine_id"], readings)


def test_batch_explain_explains_every_engine(shared_server, engines, predictor):
    bodies = [{"engine_id": b["engine_id"], "sensor_data": b["sensor_data"][:30]} for b in engines[:3]]
    with shared_server.client() as client:
        out = client.batch_predict(bodies, explain=True)
        plain = client.batch_predict(bodies)
    assert [o.engine_id for o in out] == [b["engine_id"] for b in bodies]
    assert all(o.explanation and len(o.explanation["contributions"]) == predictor.pipeline.n_features for o in out)
    assert all(o.explanation is None for o in plain)


def old_messages() -> tuple[type[Any], type[Any]]:
    """PredictRULRequest / PredictRULResponse as compiled from the .proto before explanations: the
    current file without the explain fields and the explanation messages, in a pool of its own."""
    proto = descriptor_pb2.FileDescriptorProto()
    rul_pb2.DESCRIPTOR.CopyToProto(proto)
    keep = [m for m in proto.message_type if m.name not in NEW_MESSAGES]
    del proto.message_type[:]
    proto.message_type.extend(keep)
    for m in proto.message_type:
        fields = [f for f in m.field if f.name not in ("explain", "explanation")]
        del m.field[:]
        m.field.extend(fields)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName("prognos.v1.PredictRULRequest"))
    response = message_factory.GetMessageClass(pool.FindMessageTypeByName("prognos.v1.PredictRULResponse"))
    assert "explain" not in request.DESCRIPTOR.fields_by_name  # really the old shape
    return request, response


def test_a_client_built_before_explanations_still_gets_its_prediction(shared_server, engines, predictor):
    Request, Response = old_messages()
    body = engines[2]
    request = Request(engine_id=body["engine_id"])
    for r in body["sensor_data"][:35]:
        request.sensor_data.add(**r)
    with grpc.insecure_channel(shared_server.target) as channel:
        call = channel.unary_unary("/prognos.v1.RulService/PredictRUL", request_serializer=Request.SerializeToString,
                                   response_deserializer=Response.FromString)
        old = call(request, timeout=10)
    assert old.engine_id == body["engine_id"] and old.model_version == predictor.version
    assert len(UnknownFieldSet(old)) == 0  # nothing it cannot read was sent
    with shared_server.client() as client:
        new = client.predict(body["engine_id"], body["sensor_data"][:35])
    assert old.predicted_rul == pytest.approx(new.predicted_rul) and old.lower == pytest.approx(new.lower)


def test_a_gateway_relays_explanations_from_its_inference_replica(shared_server, engines, predictor):
    from prognos.serving.pool import InferencePool

    body = engines[3]
    readings = body["sensor_data"][:40]

    async def through_pool() -> dict[str, Any]:
        pool = InferencePool(shared_server.settings, [shared_server.target])
        try:
            await pool.reload()
            served = await pool.predict_many([(body["engine_id"], readings)], "sensor_data", explain=True)
            plain = await pool.predict_many([(body["engine_id"], readings)], "sensor_data")
            assert plain[0].explanation is None
            return served[0].to_dict()
        finally:
            await pool.close()

    relayed = asyncio.run(through_pool())
    relayed.pop("timestamp")
    assert relayed == rest_body(PredictionService(shared_server.settings, predictor), body["engine_id"], readings)
