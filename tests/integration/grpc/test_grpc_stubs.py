"""The checked-in stubs are exactly what scripts/gen_proto.sh makes of proto/ (they never drift)."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STUBS = ROOT / "src" / "prognos" / "serving" / "grpc" / "v1"
GENERATED = ("rul_pb2.py", "rul_pb2.pyi", "rul_pb2_grpc.py")


def test_regenerating_the_stubs_gives_the_checked_in_files(tmp_path: Path):
    pytest.importorskip("grpc_tools")
    env = dict(os.environ, PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for name in GENERATED:
        fresh, checked_in = (tmp_path / name).read_text(), (STUBS / name).read_text()
        diff = "".join(difflib.unified_diff(checked_in.splitlines(True), fresh.splitlines(True), name, "regenerated"))
        assert not diff, f"{name} is stale: run scripts/gen_proto.sh and commit\n{diff[:3000]}"


def test_the_stubs_import_from_inside_the_package():
    from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc

    assert rul_pb2.DESCRIPTOR.name == "prognos/v1/rul.proto"
    assert rul_pb2.DESCRIPTOR.package == "prognos.v1"
    assert hasattr(rul_pb2_grpc, "RulServiceStub")
    assert sorted(m.name for m in rul_pb2.DESCRIPTOR.services_by_name["RulService"].methods) == [
        "BatchPredictRUL", "GetModel", "IngestReadings", "PredictRUL", "StreamPredictRUL"]


def test_every_reading_field_is_optional_and_named_like_the_schema():
    from prognos.data.schema import READING_FIELDS
    from prognos.serving.grpc.v1 import rul_pb2

    fields = rul_pb2.Reading.DESCRIPTOR.fields
    assert tuple(f.name for f in fields) == READING_FIELDS
    assert all(f.has_presence for f in fields)  # "not sent" differs from 0
    assert all(f.json_name == f.name for f in fields)
