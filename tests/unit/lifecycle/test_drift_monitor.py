"""The server's drift job without a server: captured requests -> verdict -> the ``drift`` alert on
the model version opens, escalates, and resolves when the data is back in distribution; gauges
follow. The alert belongs to the model version: no pseudo-engine appears among the engines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from prognos.config import get_settings
from prognos.fleet import build_fleet
from prognos.fleet.notify import FakeNotifier
from prognos.lifecycle.drift import CaptureRecord, DriftCapture
from prognos.lifecycle.monitoring import DriftMonitor, Monitoring
from prognos.reference import load_reference
from prognos.serving.service import PredictionService, load_predictor


def test_drift_job_opens_and_resolves_the_fleet_alert(tiny_bundle: Path, tmp_path: Path) -> None:
    settings = get_settings(database_url=f"sqlite:///{tmp_path / 'fleet.db'}", data_dir=tmp_path / "data",
                            drift_min_samples=50, drift_buffer_size=200, drift_sample_rate=1.0)
    notifier = FakeNotifier()
    fleet = build_fleet(settings, notifier=notifier)
    service = PredictionService(settings, load_predictor(tiny_bundle, settings))
    capture_ = DriftCapture.from_settings(settings)
    monitoring = Monitoring(settings, capture_, DriftMonitor(settings, capture_), canary=None, service=service,
                            fleet=fleet)  # injected, as prognos.assembly does
    predictor = service.predictor
    ref = load_reference(predictor.bundle)
    assert ref is not None
    rng = np.random.default_rng(0)

    def capture(n: int, shift: float) -> None:
        """n records drawn from the reference's own quantiles (in distribution), shifted by ``shift`` sd."""
        feats = np.stack([np.interp(rng.random(n), np.linspace(0, 1, 101), d.quantiles) + shift * d.std
                          for d in ref.features.values()], axis=1)
        raw = np.stack([np.interp(rng.random(n), np.linspace(0, 1, 101), d.quantiles) for d in ref.raw.values()],
                       axis=1)
        preds = np.interp(rng.random(n), np.linspace(0, 1, 101), ref.prediction.quantiles)
        for f, r, p in zip(feats, raw, preds, strict=True):
            monitoring.capture.buffer.append(CaptureRecord(0.0, predictor.version, f.tolist(), r.tolist(), float(p)))

    async def check():  # type: ignore[no-untyped-def]
        return await monitoring.drift_check(service)

    capture(30, 0.0)
    assert asyncio.run(check()).status == "insufficient"
    assert fleet.store.list_alerts(kind="drift").total == 0

    capture(170, 0.0)
    ok = asyncio.run(check())
    assert ok.status == "ok", ok.message
    assert fleet.store.list_alerts().total == 0 and fleet.store.list_engines().total == 0  # a clean check

    capture(200, 2.0)  # the ring buffer (200) now holds shifted records only
    drift = asyncio.run(check())
    assert drift.status == "drift"
    alerts = fleet.store.list_alerts(kind="drift", status="open")
    assert alerts.total == 1 and alerts.items[0]["target_kind"] == "model"
    assert alerts.items[0]["model_version"] == predictor.version and alerts.items[0]["engine_id"] is None
    assert fleet.store.list_engines().total == 0  # no pseudo-engine in the fleet table
    assert [c.event for c in notifier.changes] == ["opened"]
    assert monitoring.monitor.latest is drift

    asyncio.run(check())  # still drifted: the one alert stays, no duplicate
    assert fleet.store.list_alerts(kind="drift").total == 1

    capture(200, 0.0)  # back in distribution
    assert asyncio.run(check()).status == "ok"
    (alert,) = fleet.store.list_alerts(kind="drift").items
    assert alert["status"] == "resolved" and alert["resolved_by"] == "auto"
    assert [c.event for c in notifier.changes] == ["opened", "resolved"]
    asyncio.run(service.close())
    fleet.store.db.dispose()
