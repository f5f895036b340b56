"""Client-side checks: what a protobuf message cannot carry is refused before sending, naming the
field, and status codes come back as the domain exceptions."""

from __future__ import annotations

import grpc
import pytest

from prognos.errors import ModelUnavailableError, OverloadedError, RemoteError, ValidationError
from prognos.serving.grpc.client import RulClient, error_from_status
from prognos.serving.grpc.messages import reading_messages


@pytest.mark.parametrize(("reading", "message"), [
    ({"cycle": 1, "temp": 3.0}, r"^sensor_data\[0\]\.temp: unknown field"),
    ({"cycle": 1, "s2": "642.1"}, r"^sensor_data\[0\]\.s2: '642.1' is not a number"),
    ({"cycle": 1, "s2": True}, r"^sensor_data\[0\]\.s2: True is not a number"),
    ({"cycle": 1.5, "s2": 642.1}, r"^sensor_data\[0\]\.cycle: 1.5 is not a whole number"),
    ({"cycle": 2**40, "s2": 642.1}, r"^sensor_data\[0\]\.cycle: 1099511627776 is not a whole number"),
])
def test_readings_a_message_cannot_carry_are_named(reading, message):
    with pytest.raises(ValidationError, match=message):
        reading_messages([reading])


def test_json_numbers_convert_like_rest():
    (m,) = reading_messages([{"cycle": 7.0, "s2": 642, "s3": None}])
    assert m.cycle == 7 and m.s2 == 642.0
    assert not m.HasField("s3")  # None is "not sent", not 0


def test_status_codes_become_domain_errors():
    assert isinstance(error_from_status(grpc.StatusCode.INVALID_ARGUMENT, "x"), ValidationError)
    assert isinstance(error_from_status(grpc.StatusCode.UNAVAILABLE, "x"), ModelUnavailableError)
    overloaded = error_from_status("RESOURCE_EXHAUSTED", "busy", 0.25)
    assert isinstance(overloaded, OverloadedError) and overloaded.retry_after_s == 0.25
    other = error_from_status(grpc.StatusCode.DEADLINE_EXCEEDED, "slow")
    assert type(other) is RemoteError and str(other) == "DEADLINE_EXCEEDED: slow"


def test_an_unreachable_server_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with RulClient(f"127.0.0.1:{port}", timeout_s=0.5) as client:
        with pytest.raises(ModelUnavailableError, match="no gRPC server answered"):
            client.wait_ready()
        with pytest.raises(ModelUnavailableError):
            client.predict("e", [{"cycle": 1, "s2": 642.1}])


def test_a_bad_stream_request_stops_the_stream_after_the_good_ones(shared_server, engines):
    body = engines[0]
    with shared_server.client() as client:
        updates = client.stream([{"engine_id": "e", "sensor_data": body["sensor_data"][:1]},
                                 {"engine_id": "e", "sensor_data": [{"cycle": 2, "temp": 1.0}]}], timeout_s=10)
        first = next(updates)
        assert first.prediction is not None
        with pytest.raises(ValidationError, match=r"^stream request 1: sensor_data\[0\]\.temp: unknown field"):
            next(updates)
