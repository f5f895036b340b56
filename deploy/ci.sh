#!/usr/bin/env bash
# Deployment checks that need containers, run by .ci/run after `make test`:
#   1. build the runtime image (deploy/build-image.sh --local-base: the base from debootstrap when
#      no registry is reachable; cached after the first build),
#   2. the container smoke test (deploy/smoke_test.py: non-root, /ready < 30 s, predict + ingest,
#      2 minutes of 100 predictions/s + 20 readings/s under --memory 600m, restart, SIGTERM),
#   3. the stack test (deploy/stack_test.py: the container + Debian PostgreSQL 15 + Prometheus).
# Runs when CI=true or PROGNOS_CONTAINER_TESTS=1; PROGNOS_CONTAINER_TESTS=0 skips it. As root with
# CI=true it installs the Debian packages it needs (idempotent). The Terraform, unit-file, rules and
# workflow checks are pytest tests (tests/deploy) that `make test` already ran.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${PROGNOS_CONTAINER_TESTS:-}" = 0 ]; then
  echo "deploy/ci.sh: skipped (PROGNOS_CONTAINER_TESTS=0)"; exit 0
fi
if [ "${CI:-}" != true ] && [ "${PROGNOS_CONTAINER_TESTS:-}" != 1 ]; then
  echo "deploy/ci.sh: skipped (container build + 2-minute load; set CI=true or PROGNOS_CONTAINER_TESTS=1)"; exit 0
fi

PKGS="podman runc debootstrap prometheus postgresql-15"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "deploy/ci.sh: installing$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "deploy/ci.sh: error: missing Debian packages:$missing (install them, or run as root)" >&2; exit 1
  fi
fi
PY=.venv/bin/python
[ -x "$PY" ] || { echo "deploy/ci.sh: error: $PY missing (run make install)" >&2; exit 1; }

started=$(date +%s)
deploy/build-image.sh --local-base
work=$(mktemp -d /tmp/prognos-deploy-ci.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$PY" -c 'import sys; sys.path.insert(0, "deploy"); from pathlib import Path; from smoke_test import train_tiny_bundle; train_tiny_bundle(Path(sys.argv[1]))' "$work/bundle"
"$PY" deploy/smoke_test.py --bundle "$work/bundle"
"$PY" deploy/stack_test.py --bundle "$work/bundle"
echo "deploy/ci.sh: passed in $(( $(date +%s) - started )) s"
