from __future__ import annotations

import random

from structlog.testing import capture_logs

from prognos.serving.logs import RequestLogger


def test_successes_are_sampled_and_errors_always_logged() -> None:
    log = RequestLogger(0.1, rng=random.Random(7))
    with capture_logs() as logs:
        for i in range(1000):
            log.request(request_id=f"r{i}", route="/api/v1/predict", status=200, latency_ms=1.0,
                        engine_id="e1", model_version="v")
        for i in range(20):
            log.request(request_id=f"x{i}", route="/api/v1/predict", status=422, latency_ms=1.0,
                        error="sensor_data[0].s2: missing")
    ok = [e for e in logs if e["event"] == "request"]
    failed = [e for e in logs if e["event"] == "request failed"]
    assert 60 <= len(ok) <= 140  # ~10 % of 1000
    assert len(failed) == 20 and failed[0]["error"] == "sensor_data[0].s2: missing"
    assert set(ok[0]) >= {"request_id", "route", "status", "latency_ms", "engine_id", "model_version"}


def test_rate_zero_logs_no_success_but_every_error() -> None:
    log = RequestLogger(0.0)
    with capture_logs() as logs:
        log.request(request_id="a", route="/r", status=200, latency_ms=1.0)
        log.request(request_id="b", route="/r", status=503, latency_ms=1.0, error="busy")
    assert [(e["request_id"], e["log_level"]) for e in logs] == [("b", "error")]
