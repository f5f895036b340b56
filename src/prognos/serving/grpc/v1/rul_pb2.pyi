from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reading(_message.Message):
    __slots__ = ("cycle", "setting_1", "setting_2", "setting_3", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21")
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    SETTING_1_FIELD_NUMBER: _ClassVar[int]
    SETTING_2_FIELD_NUMBER: _ClassVar[int]
    SETTING_3_FIELD_NUMBER: _ClassVar[int]
    S1_FIELD_NUMBER: _ClassVar[int]
    S2_FIELD_NUMBER: _ClassVar[int]
    S3_FIELD_NUMBER: _ClassVar[int]
    S4_FIELD_NUMBER: _ClassVar[int]
    S5_FIELD_NUMBER: _ClassVar[int]
    S6_FIELD_NUMBER: _ClassVar[int]
    S7_FIELD_NUMBER: _ClassVar[int]
    S8_FIELD_NUMBER: _ClassVar[int]
    S9_FIELD_NUMBER: _ClassVar[int]
    S10_FIELD_NUMBER: _ClassVar[int]
    S11_FIELD_NUMBER: _ClassVar[int]
    S12_FIELD_NUMBER: _ClassVar[int]
    S13_FIELD_NUMBER: _ClassVar[int]
    S14_FIELD_NUMBER: _ClassVar[int]
    S15_FIELD_NUMBER: _ClassVar[int]
    S16_FIELD_NUMBER: _ClassVar[int]
    S17_FIELD_NUMBER: _ClassVar[int]
    S18_FIELD_NUMBER: _ClassVar[int]
    S19_FIELD_NUMBER: _ClassVar[int]
    S20_FIELD_NUMBER: _ClassVar[int]
    S21_FIELD_NUMBER: _ClassVar[int]
    cycle: int
    setting_1: float
    setting_2: float
    setting_3: float
    s1: float
    s2: float
    s3: float
    s4: float
    s5: float
    s6: float
    s7: float
    s8: float
    s9: float
    s10: float
    s11: float
    s12: float
    s13: float
    s14: float
    s15: float
    s16: float
    s17: float
    s18: float
    s19: float
    s20: float
    s21: float
    def __init__(self, cycle: _Optional[int] = ..., setting_1: _Optional[float] = ..., setting_2: _Optional[float] = ..., setting_3: _Optional[float] = ..., s1: _Optional[float] = ..., s2: _Optional[float] = ..., s3: _Optional[float] = ..., s4: _Optional[float] = ..., s5: _Optional[float] = ..., s6: _Optional[float] = ..., s7: _Optional[float] = ..., s8: _Optional[float] = ..., s9: _Optional[float] = ..., s10: _Optional[float] = ..., s11: _Optional[float] = ..., s12: _Optional[float] = ..., s13: _Optional[float] = ..., s14: _Optional[float] = ..., s15: _Optional[float] = ..., s16: _Optional[float] = ..., s17: _Optional[float] = ..., s18: _Optional[float] = ..., s19: _Optional[float] = ..., s20: _Optional[float] = ..., s21: _Optional[float] = ...) -> None: ...

class PredictRULRequest(_message.Message):
    __slots__ = ("engine_id", "sensor_data", "explain")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SENSOR_DATA_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    sensor_data: _containers.RepeatedCompositeFieldContainer[Reading]
    explain: bool
    def __init__(self, engine_id: _Optional[str] = ..., sensor_data: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ..., explain: _Optional[bool] = ...) -> None: ...

class ChannelContribution(_message.Message):
    __slots__ = ("field", "name", "unit", "contribution")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    name: str
    unit: str
    contribution: float
    def __init__(self, field: _Optional[str] = ..., name: _Optional[str] = ..., unit: _Optional[str] = ..., contribution: _Optional[float] = ...) -> None: ...

class SpanContribution(_message.Message):
    __slots__ = ("cycles_ago_from", "cycles_ago_to", "first_cycle", "last_cycle", "contribution")
    CYCLES_AGO_FROM_FIELD_NUMBER: _ClassVar[int]
    CYCLES_AGO_TO_FIELD_NUMBER: _ClassVar[int]
    FIRST_CYCLE_FIELD_NUMBER: _ClassVar[int]
    LAST_CYCLE_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    cycles_ago_from: int
    cycles_ago_to: int
    first_cycle: int
    last_cycle: int
    contribution: float
    def __init__(self, cycles_ago_from: _Optional[int] = ..., cycles_ago_to: _Optional[int] = ..., first_cycle: _Optional[int] = ..., last_cycle: _Optional[int] = ..., contribution: _Optional[float] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("method", "baseline", "relation", "model_rul", "baseline_rul", "interaction", "contributions", "spans", "since_cycles_ago", "since_cycle")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    RELATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_RUL_FIELD_NUMBER: _ClassVar[int]
    BASELINE_RUL_FIELD_NUMBER: _ClassVar[int]
    INTERACTION_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    SINCE_CYCLES_AGO_FIELD_NUMBER: _ClassVar[int]
    SINCE_CYCLE_FIELD_NUMBER: _ClassVar[int]
    method: str
    baseline: str
    relation: str
    model_rul: float
    baseline_rul: float
    interaction: float
    contributions: _containers.RepeatedCompositeFieldContainer[ChannelContribution]
    spans: _containers.RepeatedCompositeFieldContainer[SpanContribution]
    since_cycles_ago: int
    since_cycle: int
    def __init__(self, method: _Optional[str] = ..., baseline: _Optional[str] = ..., relation: _Optional[str] = ..., model_rul: _Optional[float] = ..., baseline_rul: _Optional[float] = ..., interaction: _Optional[float] = ..., contributions: _Optional[_Iterable[_Union[ChannelContribution, _Mapping]]] = ..., spans: _Optional[_Iterable[_Union[SpanContribution, _Mapping]]] = ..., since_cycles_ago: _Optional[int] = ..., since_cycle: _Optional[int] = ...) -> None: ...

class PredictRULResponse(_message.Message):
    __slots__ = ("engine_id", "predicted_rul", "lower", "upper", "confidence_level", "model_version", "status", "timestamp", "last_cycle", "explanation")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_RUL_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LAST_CYCLE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    predicted_rul: float
    lower: float
    upper: float
    confidence_level: float
    model_version: str
    status: str
    timestamp: str
    last_cycle: int
    explanation: Explanation
    def __init__(self, engine_id: _Optional[str] = ..., predicted_rul: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., confidence_level: _Optional[float] = ..., model_version: _Optional[str] = ..., status: _Optional[str] = ..., timestamp: _Optional[str] = ..., last_cycle: _Optional[int] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class BatchPredictRULRequest(_message.Message):
    __slots__ = ("requests", "explain")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PredictRULRequest]
    explain: bool
    def __init__(self, requests: _Optional[_Iterable[_Union[PredictRULRequest, _Mapping]]] = ..., explain: _Optional[bool] = ...) -> None: ...

class BatchPredictRULResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[PredictRULResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[PredictRULResponse, _Mapping]]] = ...) -> None: ...

class StreamPredictRULRequest(_message.Message):
    __slots__ = ("engine_id", "sensor_data")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SENSOR_DATA_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    sensor_data: _containers.RepeatedCompositeFieldContainer[Reading]
    def __init__(self, engine_id: _Optional[str] = ..., sensor_data: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StreamPredictRULResponse(_message.Message):
    __slots__ = ("engine_id", "prediction", "error")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    prediction: PredictRULResponse
    error: StreamError
    def __init__(self, engine_id: _Optional[str] = ..., prediction: _Optional[_Union[PredictRULResponse, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class IngestReadingsRequest(_message.Message):
    __slots__ = ("engine_id", "sensor_data")
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SENSOR_DATA_FIELD_NUMBER: _ClassVar[int]
    engine_id: str
    sensor_data: _containers.RepeatedCompositeFieldContainer[Reading]
    def __init__(self, engine_id: _Optional[str] = ..., sensor_data: _Optional[_Iterable[_Union[Reading, _Mapping]]] = ...) -> None: ...

class IngestReadingsResponse(_message.Message):
    __slots__ = ("accepted", "duplicates")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    duplicates: int
    def __init__(self, accepted: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("model_version", "manifest_json", "history_readings", "max_readings")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_READINGS_FIELD_NUMBER: _ClassVar[int]
    MAX_READINGS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    manifest_json: str
    history_readings: int
    max_readings: int
    def __init__(self, model_version: _Optional[str] = ..., manifest_json: _Optional[str] = ..., history_readings: _Optional[int] = ..., max_readings: _Optional[int] = ...) -> None: ...
