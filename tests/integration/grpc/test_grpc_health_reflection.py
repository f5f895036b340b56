"""The standard health service follows readiness; reflection lets a generic client, knowing
nothing of prognos, discover RulService and call it with the REST body as JSON."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from prognos.errors import NotFoundError
from prognos.serving.grpc.health import RUL_SERVICE

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_is_serving_when_a_model_is_loaded(shared_server):
    with shared_server.client() as client:
        assert client.health() == "SERVING"
        assert client.health("prognos.v1.RulService") == "SERVING"
        with pytest.raises(NotFoundError):
            client.health("no.such.Service")


def test_health_is_not_serving_without_a_model_and_follows_readiness(grpc_server, tiny_bundle):
    server = grpc_server(None)
    with server.client() as client:
        assert client.health() == "NOT_SERVING"
        assert client.health(RUL_SERVICE) == "NOT_SERVING"
        server.run(server.service.reload(tiny_bundle), timeout_s=60)
        assert client.health() == "SERVING"
        server.service.begin_shutdown()  # draining: load balancers must stop sending
        assert client.health() == "NOT_SERVING"


def test_health_watch_sees_the_model_arrive_and_the_shutdown(grpc_server, tiny_bundle):
    server = grpc_server(None)
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert next(watch).status == NOT_SERVING
        server.run(server.service.reload(tiny_bundle), timeout_s=60)
        assert next(watch).status == SERVING
        server.run(server.health.enter_graceful_shutdown())
        assert next(watch).status == NOT_SERVING
        watch.cancel()


def test_graceful_shutdown_pins_not_serving(grpc_server, predictor):
    server = grpc_server(predictor)
    with server.client() as client:
        assert client.health() == "SERVING"
        server.run(server.health.enter_graceful_shutdown())
        assert server.service.ready  # the model is still there ...
        assert client.health() == "NOT_SERVING"  # ... but the server says it is going away
        assert client.health(RUL_SERVICE) == "NOT_SERVING"


def test_reflection_lists_the_services(shared_server):
    with grpc.insecure_channel(shared_server.target) as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "prognos.v1.RulService" in services
    assert "grpc.health.v1.Health" in services
    assert "grpc.reflection.v1alpha.ServerReflection" in services


def test_a_generic_client_calls_predict_through_reflection(shared_server, engines):
    """What grpcurl does: descriptors from the server, request from JSON, response to JSON."""
    with grpc.insecure_channel(shared_server.target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindServiceByName("prognos.v1.RulService").FindMethodByName("PredictRUL")
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        rest_body = {"engine_id": "from-json", "sensor_data": engines[0]["sensor_data"][:12]}
        request = json_format.Parse(json.dumps(rest_body), request_cls())
        call = channel.unary_unary("/prognos.v1.RulService/PredictRUL",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_cls.FromString)
        answer = json_format.MessageToDict(call(request, timeout=10))
    assert answer["engine_id"] == "from-json"
    assert answer["last_cycle"] == 12
    assert answer["lower"] <= answer["predicted_rul"] <= answer["upper"]
    assert answer["status"] in {"healthy", "warning", "critical"}
    assert time.strptime(answer["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")
