"""Helpers of the deployment tests: the repository's deploy/ directory and the CI switches.

Fast checks (unit file, alert rules, compose file, workflow, Dockerfile, metric names against a live
server and a real Prometheus) run in every ``make test``. Slow ones run when ``CI=true`` or
``PROGNOS_DEPLOY_TESTS=1`` (Terraform init/validate/test) and skip with the reason otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def slow_deploy_checks_enabled() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("PROGNOS_DEPLOY_TESTS") == "1"


requires_deploy_switch = pytest.mark.skipif(
    not slow_deploy_checks_enabled(), reason="slow deployment check: runs with CI=true or PROGNOS_DEPLOY_TESTS=1")
