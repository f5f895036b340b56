"""Request bodies for serving tests, made from the synthetic fleet the tiny bundle was trained on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from prognos.bundle import read_bundle, write_bundle
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.synthetic import synthetic_fleet

_FLEET = synthetic_fleet(6, seed=11)


def required_fields(bundle: Path) -> list[str]:
    return list(json.loads((bundle / "bundle.json").read_text())["input_fields"])


def readings(bundle: Path, n: int = 30, engine: int = 0, start: int = 0) -> list[dict[str, Any]]:
    """``n`` consecutive valid readings (with cycle) of synthetic engine ``engine`` from row ``start``."""
    fields = required_fields(bundle)
    e = list(_FLEET.engines())[engine]
    rows = []
    for c, v in zip(e.cycles[start : start + n], e.values[start : start + n], strict=True):
        rows.append({"cycle": int(c), **{f: round(float(v[MEASUREMENT_FIELDS.index(f)]), 4) for f in fields}})
    assert len(rows) == n, "the synthetic engine is shorter than asked"
    return rows


def body(bundle: Path, engine_id: str = "engine-1", **kw: Any) -> dict[str, Any]:
    return {"engine_id": engine_id, "sensor_data": readings(bundle, **kw)}


def rebundle(src: Path, dst: Path, version: str) -> Path:
    """A valid copy of ``src`` under another version (same network): what a retrained bundle looks like."""
    b = read_bundle(src)
    m = b.manifest
    tmp = dst.parent / f".{dst.name}.onnx"
    shutil.copyfile(b.model_path, tmp)
    try:
        write_bundle(dst, onnx_path=tmp, pipeline=b.pipeline, calibration=b.calibration, version=version,
                     dataset=m.dataset, model=m.model, validation_metrics=m.validation_metrics,
                     training_seconds=m.training_seconds)
    finally:
        tmp.unlink()
    return dst


def tamper(bundle: Path) -> Path:
    """Flip one byte of the model: the checksum no longer matches."""
    model = bundle / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return bundle
