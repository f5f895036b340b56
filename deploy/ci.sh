#!/usr/bin/env bash
# Deployment checks that need containers, run by `make test` (before pytest) when switched on:
#   1. build the runtime image (deploy/build-image.sh --local-base: the base from debootstrap when
#      no registry is reachable; cached after the first build),
#   2. the container smoke test (deploy/smoke_test.py: non-root, /ready < 30 s, predict + ingest,
#      2 minutes of 100 predictions/s + 20 readings/s under --memory 600m, restart, SIGTERM),
#   3. the stack test (deploy/stack_test.py: the container + Debian PostgreSQL 15 + Prometheus).
# Runs when CI=true or PROGNOS_CONTAINER_TESTS=1; PROGNOS_CONTAINER_TESTS=0 skips it. The Debian
# packages it needs come from scripts/system-deps.sh (installed as root, else named). PYTHON: the
# venv's python (default .venv/bin/python). The Terraform, unit-file, rules and workflow checks are
# pytest tests (tests/deploy).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${PROGNOS_CONTAINER_TESTS:-}" = 0 ]; then
  echo "deploy/ci.sh: skipped (PROGNOS_CONTAINER_TESTS=0)"; exit 0
fi
if [ "${CI:-}" != true ] && [ "${PROGNOS_CONTAINER_TESTS:-}" != 1 ]; then
  echo "deploy/ci.sh: skipped (container build + 2-minute load; set CI=true or PROGNOS_CONTAINER_TESTS=1)"; exit 0
fi

scripts/system-deps.sh container
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || { echo "deploy/ci.sh: error: $PY missing (run make install)" >&2; exit 1; }

started=$(date +%s)
deploy/build-image.sh --local-base
work=$(mktemp -d /tmp/prognos-deploy-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$PY" -c 'import sys; sys.path.insert(0, "deploy"); from pathlib import Path; from smoke_test import train_tiny_bundle; train_tiny_bundle(Path(sys.argv[1]))' "$work/bundle"
"$PY" deploy/smoke_test.py --bundle "$work/bundle"
"$PY" deploy/stack_test.py --bundle "$work/bundle"
echo "deploy/ci.sh: passed in $(( $(date +%s) - started )) s"
