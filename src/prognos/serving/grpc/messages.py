"""Protobuf messages <-> the JSON-shaped dicts the service and the REST API use.

Requests become exactly what the REST body decodes to (``[{"cycle": 1, "s2": 642.1}, ...]``), so
the one validator (:mod:`prognos.data.validation`) judges both protocols alike. Fields that are not
set are left out of the dict (proto3 ``optional``), so "not sent" never turns into 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from prognos.data.validation import check_engine_id
from prognos.errors import ValidationError
from prognos.serving.grpc.v1 import rul_pb2

__all__ = ["EngineInput", "EngineReadings", "engine_input", "reading_messages", "reject_unknown", "response_dict",
           "response_message"]

_ALLOWED = "allowed: cycle, setting_1..setting_3, s1..s21"
_READING_FIELDS = frozenset(rul_pb2.Reading.DESCRIPTOR.fields_by_name)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_RESPONSE_FIELDS = frozenset(f.name for f in rul_pb2.PredictRULResponse.DESCRIPTOR.fields)


@dataclass(frozen=True)
class EngineInput:
    """One engine's request as the REST body has it: readings are ``{"cycle": 1, "s2": 642.1}``."""

    engine_id: str
    readings: list[dict[str, float | int]]


class EngineReadings(Protocol):
    """Any request message carrying one engine's readings (predict, stream and ingest requests)."""

    @property
    def engine_id(self) -> str: ...

    @property
    def sensor_data(self) -> Sequence[rul_pb2.Reading]: ...


def reject_unknown(message: Message, where: str) -> None:
    """Raise if ``message`` carries fields this server's .proto does not define (a newer or a
    hand-built client): silently dropping a sensor the client meant to send would be worse. A known
    field number with the wrong wire type (a string where a number belongs) lands here too."""
    unknown = UnknownFieldSet(message)
    if not len(unknown):
        return
    numbers = sorted({f.field_number for f in unknown})
    known = message.DESCRIPTOR.fields_by_number
    for number in numbers:
        if number in known:
            field = known[number]
            kind = {FieldDescriptor.TYPE_STRING: "a string", FieldDescriptor.TYPE_MESSAGE: "a message"}.get(
                field.type, "a number")
            raise ValidationError(f"{where}.{field.name}: not {kind} (wrong protobuf wire type)")
    raise ValidationError(f"{where}: unknown field number {', '.join(map(str, numbers))} ({_ALLOWED})")


def engine_input(request: EngineReadings, prefix: str = "") -> EngineInput:
    """Check and convert one engine's request; ``prefix`` starts every error path (``requests[3].``
    inside a batch). The readings themselves are judged later, by the one validator."""
    reject_unknown(request, prefix.rstrip(".") or "request")  # type: ignore[arg-type]
    if not request.engine_id.strip():
        raise ValidationError(f"{prefix}engine_id: missing (give the engine's id)")
    check_engine_id(request.engine_id, f"{prefix}engine_id")  # the one engine-id rule, as over REST
    readings = []
    for i, reading in enumerate(request.sensor_data):
        reject_unknown(reading, f"{prefix}sensor_data[{i}]")
        readings.append({fd.name: value for fd, value in reading.ListFields()})
    return EngineInput(request.engine_id, readings)


def reading_messages(readings: Iterable[Mapping[str, Any]], where: str = "sensor_data") -> list[rul_pb2.Reading]:
    """REST-shaped readings -> messages (client side). What a message cannot carry (an unknown
    field, a non-number, a cycle that is no 32-bit whole number) is named here; everything else,
    NaN included, is left for the server's validator to judge."""
    out = []
    for i, reading in enumerate(readings):
        if not isinstance(reading, Mapping):
            raise ValidationError(f"{where}[{i}]: expected an object of field: number, got {type(reading).__name__}")
        fields: dict[str, Any] = {}
        for name, value in reading.items():
            path = f"{where}[{i}].{name}"
            if name not in _READING_FIELDS:
                raise ValidationError(f"{path}: unknown field ({_ALLOWED})")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"{path}: {value!r} is not a number")
            if name == "cycle":
                if not (float(value).is_integer() and _INT32_MIN <= value <= _INT32_MAX):
                    raise ValidationError(f"{path}: {value!r} is not a whole number of cycles")
                value = int(value)  # JSON 7.0 is cycle 7, as over REST
            fields[name] = value
        out.append(rul_pb2.Reading(**fields))
    return out


def response_message(body: Mapping[str, Any]) -> rul_pb2.PredictRULResponse:
    """The REST response body (``ServedPrediction.to_dict()``) as a message: same fields, same values."""
    fields = {k: v for k, v in body.items() if k in _RESPONSE_FIELDS and v is not None}
    if "explanation" in fields:
        e = {k: v for k, v in fields["explanation"].items() if v is not None}
        spans = [rul_pb2.SpanContribution(**{k: v for k, v in s.items() if v is not None}) for s in e.pop("spans")]
        contributions = [rul_pb2.ChannelContribution(**c) for c in e.pop("contributions")]
        fields["explanation"] = rul_pb2.Explanation(contributions=contributions, spans=spans, **e)
    return rul_pb2.PredictRULResponse(**fields)


def _explanation_dict(e: rul_pb2.Explanation) -> dict[str, Any]:
    return {
        "method": e.method, "baseline": e.baseline, "relation": e.relation, "model_rul": e.model_rul,
        "baseline_rul": e.baseline_rul, "interaction": e.interaction,
        "since_cycles_ago": e.since_cycles_ago if e.HasField("since_cycles_ago") else None,
        "since_cycle": e.since_cycle if e.HasField("since_cycle") else None,
        "contributions": [{"field": c.field, "name": c.name, "unit": c.unit, "contribution": c.contribution}
                          for c in e.contributions],
        "spans": [{"cycles_ago_from": s.cycles_ago_from, "cycles_ago_to": s.cycles_ago_to,
                   "first_cycle": s.first_cycle if s.HasField("first_cycle") else None,
                   "last_cycle": s.last_cycle if s.HasField("last_cycle") else None,
                   "contribution": s.contribution} for s in e.spans],
    }


def response_dict(message: rul_pb2.PredictRULResponse) -> dict[str, Any]:
    """A response message as the REST response body (``last_cycle`` None when not set; ``explanation``
    only when the server sent one)."""
    body: dict[str, Any] = {
        "engine_id": message.engine_id,
        "predicted_rul": message.predicted_rul,
        "lower": message.lower,
        "upper": message.upper,
        "confidence_level": message.confidence_level,
        "model_version": message.model_version,
        "last_cycle": message.last_cycle if message.HasField("last_cycle") else None,
        "status": message.status,
        "timestamp": message.timestamp,
    }
    if message.HasField("explanation"):
        body["explanation"] = _explanation_dict(message.explanation)
    return body
