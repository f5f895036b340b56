from __future__ import annotations

import prognos.fleet


def test_public_names_are_the_intended_ones() -> None:
    assert sorted(prognos.fleet.__all__) == ["FakeNotifier", "Fleet", "Ingestor", "Notifier", "WebhookNotifier",
                                             "build_fleet", "open_store"]
    for name in prognos.fleet.__all__:
        assert getattr(prognos.fleet, name) is not None
