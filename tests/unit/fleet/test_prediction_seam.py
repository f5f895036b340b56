"""The fleet scores through ``serving.ports.Predictions`` and nothing else: with the fake model
(what a remote inference pool looks like to the fleet) ingestion stores its predictions, with the
status by the interval's lower bound, and the window it asks for."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prognos.config import get_settings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ReadingSpec
from prognos.fleet import build_fleet
from prognos.serving.ports import FakePredictions


def test_the_fleet_scores_with_any_prediction_seam(tmp_path: Path) -> None:
    settings = get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}", data_dir=tmp_path)
    seen: list[int] = []

    def rul(seq) -> float:  # type: ignore[no-untyped-def]
        seen.append(len(seq))
        return 45.0  # healthy by the point estimate ...

    fake = FakePredictions(ReadingSpec(("s2",), {}, 500), rul, below=10.0, history=30)  # ... lower 35: warning
    fleet = build_fleet(settings, fake)
    readings = [{"cycle": c, **{f: 1.0 for f in MEASUREMENT_FIELDS}} for c in range(1, 41)]

    async def go():  # type: ignore[no-untyped-def]
        await fleet.start()
        try:
            return await fleet.ingestor.ingest("e1", readings)
        finally:
            await fleet.stop()

    result = asyncio.run(go())
    (p,) = result.predictions
    assert (p.rul, p.lower, p.status, p.model_version) == (45.0, 35.0, "warning", "fake-1")
    assert seen == [30]  # the fleet fed the model the history the seam asked for
    assert fake.calls == 1
