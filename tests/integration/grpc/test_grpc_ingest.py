"""IngestReadings (client streaming) delegates to the configured ingestor; UNIMPLEMENTED without one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from prognos.data.validation import ReadingSpec, validate_sequence
from prognos.errors import PrognosError, ValidationError
from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc

TOKEN = "grpc-ingest-token"  # IngestReadings writes: it needs an operator key (the admin token is one)


@dataclass(frozen=True)
class Stored:
    accepted: int
    duplicates: int


class MemoryIngestor:
    """An in-memory stand-in for the fleet store: validates with the one validator, keeps one
    reading per (engine, cycle), counts resends as duplicates."""

    def __init__(self, spec: ReadingSpec) -> None:
        self.spec = spec
        self.readings: dict[tuple[str, int], dict[str, Any]] = {}

    async def ingest(self, engine_id: str, readings: list[dict[str, Any]]) -> Stored:
        validate_sequence(readings, self.spec)
        new = [r for r in readings if (engine_id, r["cycle"]) not in self.readings]
        for r in new:
            self.readings[(engine_id, r["cycle"])] = r
        return Stored(len(new), len(readings) - len(new))


def test_without_an_ingestor_it_is_unimplemented(shared_server, engines):
    with grpc.insecure_channel(shared_server.target) as channel, pytest.raises(grpc.RpcError) as err:
        request = rul_pb2.IngestReadingsRequest(engine_id="e")
        rul_pb2_grpc.RulServiceStub(channel).IngestReadings(iter([request]), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with shared_server.client() as client, pytest.raises(PrognosError, match=r"^UNIMPLEMENTED: IngestReadings"):
        client.ingest([{"engine_id": "e", "sensor_data": engines[0]["sensor_data"][:2]}])


def test_readings_reach_the_ingestor_as_rest_dicts(grpc_server, predictor, engines):
    ingestor = MemoryIngestor(predictor.spec)
    server = grpc_server(predictor, ingestor=ingestor, admin_token=TOKEN)
    a, b = engines[0], engines[1]
    with server.client(api_key=TOKEN) as client:
        counts = client.ingest([
            {"engine_id": a["engine_id"], "sensor_data": a["sensor_data"][:5]},
            {"engine_id": b["engine_id"], "sensor_data": b["sensor_data"][:3]},
            {"engine_id": a["engine_id"], "sensor_data": a["sensor_data"][3:7]},  # cycles 4, 5 again
        ])
    assert (counts.accepted, counts.duplicates) == (10, 2)
    assert ingestor.readings[(a["engine_id"], 7)] == a["sensor_data"][6]
    assert len(ingestor.readings) == 10


def test_a_refused_message_names_itself_and_what_was_stored(grpc_server, predictor, engines):
    ingestor = MemoryIngestor(predictor.spec)
    server = grpc_server(predictor, ingestor=ingestor, admin_token=TOKEN)
    a = engines[0]
    field = predictor.spec.required[0]
    bad = [{k: v for k, v in r.items() if k != field} for r in a["sensor_data"][5:7]]
    with server.client(api_key=TOKEN) as client, pytest.raises(ValidationError) as err:
        client.ingest([
            {"engine_id": a["engine_id"], "sensor_data": a["sensor_data"][:5]},
            {"engine_id": a["engine_id"], "sensor_data": bad},
        ])
    assert str(err.value) == (
        f"message 1 (engine {a['engine_id']!r}): sensor_data[0].{field}: missing (the model requires {field}); "
        "1 earlier message(s) were stored (5 readings accepted, 0 duplicates)"
    )
    assert len(ingestor.readings) == 5
