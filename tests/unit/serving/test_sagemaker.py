from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from prognos.config import Settings
from prognos.errors import ValidationError
from prognos.serving.predictor import Predictor
from prognos.serving.sagemaker import create_sagemaker_app, parse_csv
from prognos.serving.service import PredictionService
from tests.unit.serving.asgi import call
from tests.unit.serving.factory import body, readings


def to_csv(rows: list[dict[str, object]], engine_id: str | None = None) -> str:
    out = io.StringIO()
    fields = (["engine_id"] if engine_id else []) + list(rows[0])
    w = csv.DictWriter(out, fieldnames=fields)
    w.writeheader()
    for r in rows:
        w.writerow({**r, **({"engine_id": engine_id} if engine_id else {})})
    return out.getvalue()


def test_parse_csv_groups_by_engine_and_names_bad_cells() -> None:
    text = "engine_id,cycle,s2\na,1,642.1\nb,1,642.3\na,2,\n"
    assert parse_csv(text) == [("a", [{"cycle": 1, "s2": 642.1}, {"cycle": 2, "s2": None}]),
                               ("b", [{"cycle": 1, "s2": 642.3}])]
    with pytest.raises(ValidationError, match=r"row 3, column s2: 'x' is not a number"):
        parse_csv("cycle,s2\n1,642\n2,x\n")
    with pytest.raises(ValidationError, match="header row"):
        parse_csv("cycle,s2\n")


def test_ping_and_json_invocations_match_the_rest_contract(settings: Settings, predictor: Predictor,
                                                           tiny_bundle: Path) -> None:
    service = PredictionService(settings, predictor)
    app = create_sagemaker_app(settings, service)
    assert call(app, "GET", "/ping").status_code == 200
    one = call(app, "POST", "/invocations", json=body(tiny_bundle, "e9"))
    assert one.status_code == 200 and one.json()["engine_id"] == "e9"
    batch = call(app, "POST", "/invocations", json={"requests": [body(tiny_bundle, "a"), body(tiny_bundle, "b")]})
    assert [r["engine_id"] for r in batch.json()["responses"]] == ["a", "b"]
    assert batch.json()["responses"][0]["predicted_rul"] == one.json()["predicted_rul"]
    bad = call(app, "POST", "/invocations", json={"engine_id": "x"})
    assert bad.status_code == 422 and bad.json()["detail"] == "sensor_data: missing (required)"
    assert call(app, "POST", "/invocations", content=b"{", headers={"content-type": "application/json"}
                ).status_code == 422
    assert call(app, "POST", "/invocations", content=b"x", headers={"content-type": "image/png"}).status_code == 422
    assert call(create_sagemaker_app(settings, PredictionService(settings)), "GET", "/ping").status_code == 503


def test_csv_invocations_answer_json_or_csv(settings: Settings, predictor: Predictor, tiny_bundle: Path) -> None:
    app = create_sagemaker_app(settings, PredictionService(settings, predictor))
    rows = readings(tiny_bundle, 25)
    text = to_csv(rows, "e1") + to_csv(readings(tiny_bundle, 10, engine=2), "e2").split("\n", 1)[1]
    r = call(app, "POST", "/invocations", content=text.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    out = r.json()["responses"]
    assert [o["engine_id"] for o in out] == ["e1", "e2"]
    want = call(app, "POST", "/invocations", json={"engine_id": "e1", "sensor_data": rows}).json()
    assert out[0]["predicted_rul"] == want["predicted_rul"]
    r = call(app, "POST", "/invocations", content=to_csv(rows).encode(),
             headers={"content-type": "text/csv", "accept": "text/csv"})
    lines = r.text.strip().split("\n")
    assert r.headers["content-type"].startswith("text/csv") and lines[0].startswith("engine_id,last_cycle")
    assert lines[1].startswith(f"0,{rows[-1]['cycle']},")
    bad = to_csv(rows).replace(str(rows[3]["s2"]), "1e9", 1)
    r = call(app, "POST", "/invocations", content=bad.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "s2" in r.json()["detail"] and "plausible range" in r.json()["detail"]
