"""Schemathesis over the whole OpenAPI document of a real ``prognos serve`` (serving + fleet), with an
admin key: every operation, positive and negative examples, a fixed seed and a bounded budget.

Runs on SQLite and PostgreSQL, fresh and already holding every hostile value the reliability tests
store (:func:`tests.reliability.test_hardening.hostile_values`: the longest names and values, markup,
RTL and astral text...), so listing pages that serve them back are fuzzed too.

Passes when no response is a 5xx and every response matches the document (status documented,
content type, body schema, headers), and invalid input is refused with a 4xx. Prints how many
requests were sent. Budget: 12 examples per operation and mode times ``PROGNOS_FUZZ_BUDGET``
(default 1, which keeps this near a minute on 2 cores; a nightly or release check can raise it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.conftest import ADMIN, SUMMARY, serve  # noqa: E402
from tests.reliability.test_hardening import store_hostile_values  # noqa: E402

EXAMPLES = max(1, int(12 * float(os.environ.get("PROGNOS_FUZZ_BUDGET", "1"))))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


@dataclass
class Tally:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@pytest.mark.parametrize("database", ["sqlite", "sqlite-hostile", "postgresql-hostile"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path, tiny_bundle: Path,
                                                                    request: pytest.FixtureRequest,
                                                                    database: str) -> None:
    settings = {"rate_limit_per_s": "0", "anonymous_rate_limit_per_s": "0", "auth_failure_rate_limit_per_s": "0"}
    if database.startswith("postgresql"):
        settings["database_url"] = request.getfixturevalue("postgres").server.create_database()
    with serve(tmp_path, tiny_bundle, **settings) as server:
        if database.endswith("hostile"):
            store_hostile_values(server)
        document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        # Every request carries the admin key (below); the document's declared bearer scheme must
        # not also become a header schemathesis drops to make a "negative" case.
        schema.config.generation.update(with_security_parameters=False)
        tally = Tally()
        headers = {"Authorization": f"Bearer {ADMIN}"}
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15, [op.label for op in operations]
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, server.url, headers, tally)
        assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200  # still alive
    SUMMARY.append(f"schemathesis ({database}): {len(operations)} operations, {tally.requests} requests, statuses "
                   f"{dict(sorted(tally.by_status.items()))}, {len(tally.failures)} failures")
    assert tally.requests >= len(operations) * 2
    assert not tally.failures, "\n".join(tally.failures[:20])


def _fuzz(operation, mode, base_url: str, headers: dict[str, str], tally: Tally) -> None:  # type: ignore[no-untyped-def]
    seen: set[str] = set()

    @seed(20261125)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call(base_url=base_url, headers=headers)
        tally.requests += 1
        tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseExceptionGroup as exc:  # a FailureGroup: every check that failed for this response
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()][:8]
            message = f"{operation.label} [{mode.value}] -> {response.status_code}: {' | '.join(lines)}"
            if message not in seen:
                seen.add(message)
                tally.failures.append(message)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode is GenerationMode.NEGATIVE, operation.label
