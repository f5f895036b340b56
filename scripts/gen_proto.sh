#!/usr/bin/env bash
# Regenerate the checked-in gRPC stubs from proto/ (reproducible: same grpcio-tools, same bytes).
#
#   scripts/gen_proto.sh [OUT_DIR]     # default: src/prognos/serving/grpc/v1
#
# tests/integration/grpc/test_stubs.py runs this into a temporary directory and compares, so the
# stubs never drift from the .proto. protoc names the module after the proto package (prognos.v1);
# the stubs live inside the prognos package, so the one cross-module import is rewritten.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/src/prognos/serving/grpc/v1}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$ROOT/proto"
"$PY" -m grpc_tools.protoc -I . --python_out="$TMP" --pyi_out="$TMP" --grpc_python_out="$TMP" prognos/v1/rul.proto
sed -i 's/^from prognos\.v1 import rul_pb2 as /from prognos.serving.grpc.v1 import rul_pb2 as /' "$TMP/prognos/v1/rul_pb2_grpc.py"
mkdir -p "$OUT"
cp "$TMP/prognos/v1/rul_pb2.py" "$TMP/prognos/v1/rul_pb2.pyi" "$TMP/prognos/v1/rul_pb2_grpc.py" "$OUT/"
