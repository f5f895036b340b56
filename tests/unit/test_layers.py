"""One-way layers: nothing below the composition root imports it, the front-end runner, the
dashboard or (for data, features, serving, lifecycle) the fleet; no late wiring."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "prognos"
UPWARD = re.compile(r"^\s*(from|import)\s+prognos\.(fleet|server|web|assembly)\b", re.M)


def test_lower_layers_import_nothing_above_them() -> None:
    offenders = [f"{p.relative_to(SRC)}: {m.group(0).strip()}"
                 for pkg in ("data", "features", "serving", "lifecycle") for p in (SRC / pkg).rglob("*.py")
                 for m in UPWARD.finditer(p.read_text())]
    assert offenders == []


def test_the_fleet_imports_no_composition_root_front_end_runner_or_dashboard() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+prognos\.(server|web|assembly)\b", re.M)
    offenders = [str(p.relative_to(SRC)) for p in (SRC / "fleet").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_no_late_wiring() -> None:
    assert [p.name for p in SRC.rglob("*.py") if re.search(r"\.bind\(service", p.read_text())] == []
