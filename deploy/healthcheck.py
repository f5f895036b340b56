#!/usr/bin/env python3
"""Container HEALTHCHECK: exit 0 when the server says it can predict now (GET /ready on
PROGNOS_HTTP_PORT, or /ping on PROGNOS_SAGEMAKER_PORT in SageMaker mode), else 1."""

import os
import sys
import urllib.request

sagemaker = os.environ.get("PROGNOS_SAGEMAKER", "").lower() in ("1", "true", "yes", "on")
port = os.environ.get("PROGNOS_SAGEMAKER_PORT", "8080") if sagemaker else os.environ.get("PROGNOS_HTTP_PORT", "8000")
path = "/ping" if sagemaker else "/ready"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # connection refused, 503 while loading, timeout
    print(f"not ready: {exc}", file=sys.stderr)
    sys.exit(1)
