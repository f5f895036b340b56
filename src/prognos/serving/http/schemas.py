"""Request and response bodies of the REST API (one schema per direction).

Readings are typed loosely here (``dict[str, Any]``) on purpose: their fields, numbers and ranges
are checked by the one validator (:mod:`prognos.data.validation`), shared with gRPC and ingestion.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = ["BatchPredictRequest", "BatchPredictResponse", "ChannelContributionBody", "ExplanationBody",
           "PredictRequest", "PredictResponse", "ReloadRequest", "ReloadResponse", "SpanContributionBody"]

_EXAMPLE_READING: dict[str, JsonValue] = {
    "cycle": 31, "s2": 642.1, "s3": 1580.2, "s4": 1400.6, "s7": 554.3, "s8": 2388.0, "s9": 9050.2, "s11": 47.3,
    "s12": 521.9, "s13": 2388.0, "s14": 8130.1, "s15": 8.41, "s17": 392, "s20": 38.9, "s21": 23.3}


class PredictRequest(BaseModel):
    """One engine's recent readings, oldest first."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"engine_id": "engine-7", "sensor_data": [_EXAMPLE_READING]}]})

    engine_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
                           description="1-64 of A-Z a-z 0-9 . _ : -, starting with a letter or digit")
    sensor_data: list[dict[str, Any]] = Field(
        description="readings: cycle, setting_1..setting_3, s1..s21 (those the model requires)")


class ChannelContributionBody(BaseModel):
    field: str = Field(description="the reading field, e.g. s11")
    name: str = Field(description="display name, e.g. Ps30")
    unit: str = Field(description="unit of the channel's readings; empty when dimensionless")
    contribution: float = Field(description="cycles this channel adds to the RUL (negative: pulls it down)")


class SpanContributionBody(BaseModel):
    cycles_ago_from: int = Field(description="first reading of the span, cycles before the last reading")
    cycles_ago_to: int = Field(description="last reading of the span, cycles before the last reading (0: it)")
    first_cycle: int | None = Field(description="cycle number of the span's first reading, when readings carry cycles")
    last_cycle: int | None
    contribution: float = Field(description="cycles the span adds to the RUL, all channels together")


class ExplanationBody(BaseModel):
    method: str = Field(description="occlusion (the default), integrated_gradients (PROGNOS_EXPLAIN_METHOD, bundles "
                        "with a gradient graph) or shapley: see the model card, section Explanations")
    baseline: str = Field(description="what a channel is replaced with to measure its contribution")
    relation: str = Field(description="how contributions, baseline and interaction add up to the prediction")
    model_rul: float = Field(description="the network's RUL before the age correction, cycles")
    baseline_rul: float = Field(description="the network's RUL on the baseline window, cycles")
    interaction: float = Field(description="model_rul - baseline_rul - sum(contributions), cycles (integrated "
                               "gradients: the integral's discretisation residual)")
    since_cycles_ago: int | None = Field(description="the newest spans carrying 80 % of the spans' sum start this "
                                         "many cycles before the last reading: since when the evidence drives the RUL")
    since_cycle: int | None = Field(description="the cycle number of since_cycles_ago, when readings carry cycles")
    contributions: list[ChannelContributionBody] = Field(description="every input channel, largest |value| first")
    spans: list[SpanContributionBody] = Field(description="the window cut into runs of cycles, oldest first")


class PredictResponse(BaseModel):
    engine_id: str
    predicted_rul: float = Field(description="remaining useful life after the last reading, cycles")
    lower: float = Field(description="lower end of the prediction interval, cycles")
    upper: float = Field(description="upper end of the prediction interval, cycles")
    confidence_level: float = Field(description="nominal coverage of [lower, upper]")
    model_version: str
    status: str = Field(description="healthy, warning or critical: the interval's lower bound against "
                        "warning_rul / critical_rul (prognos.status)")
    timestamp: str = Field(description="UTC ISO-8601")
    last_cycle: int | None = None
    explanation: ExplanationBody | None = Field(default=None, description="only with ?explain=true")


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[PredictRequest]


class BatchPredictResponse(BaseModel):
    responses: list[PredictResponse]


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bundle: str | None = Field(default=None, description="bundle directory; default: reload the current one")


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None
    bundle: str
