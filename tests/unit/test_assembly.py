"""The composition root: what ``prognos serve`` is made of, built in one place and one order."""

from __future__ import annotations

from pathlib import Path

import pytest

import prognos.assembly
from prognos.assembly import build_app, merge_hooks
from prognos.config import get_settings
from prognos.errors import ConfigError
from prognos.serving.hooks import ServerHooks


def test_public_names() -> None:
    assert set(prognos.assembly.__all__) == {"ROLES", "ServingApp", "build_app", "fleet_hooks", "merge_hooks",
                                             "run"}


def test_the_fleet_scores_through_the_service_built_before_it(tmp_path: Path, tiny_bundle: Path) -> None:
    settings = get_settings(data_dir=tmp_path, bundle=tiny_bundle)
    app = build_app(settings)
    assert app.fleet is not None and app.fleet.ingestor.service is app.service  # no late wiring
    paths = {getattr(r, "path", "") for router in app.hooks.routers for r in router.routes}
    assert {"/api/v1/engines", "/api/v1/models/drift", "/ui/fleet"} <= paths  # fleet, lifecycle, dashboard
    assert app.hooks.authenticator is app.fleet.authenticator and app.hooks.ingestor is app.fleet.ingestor
    app.fleet.db.dispose()


def test_sagemaker_mode_is_the_service_alone(tmp_path: Path, tiny_bundle: Path) -> None:
    app = build_app(get_settings(data_dir=tmp_path, bundle=tiny_bundle, sagemaker=True))
    assert app.fleet is None and app.hooks == ServerHooks()


def test_the_inference_role_is_the_service_without_fleet_or_database(tmp_path: Path, tiny_bundle: Path) -> None:
    app = build_app(get_settings(data_dir=tmp_path, bundle=tiny_bundle), role="inference")
    assert app.fleet is None and app.hooks == ServerHooks() and not (tmp_path / "prognos.db").exists()


def test_the_gateway_loads_no_model_and_takes_inference_only(tmp_path: Path, tiny_bundle: Path) -> None:
    with pytest.raises(ConfigError, match="loads no model"):
        build_app(get_settings(data_dir=tmp_path, bundle=tiny_bundle), role="gateway")
    with pytest.raises(ConfigError, match="--inference is only for --role gateway"):
        build_app(get_settings(data_dir=tmp_path, bundle=tiny_bundle), inference=["127.0.0.1:1"])


def test_bad_role_and_both_bundle_and_model_are_config_errors(tmp_path: Path, tiny_bundle: Path) -> None:
    with pytest.raises(ConfigError, match="role: 'everything'"):
        build_app(get_settings(data_dir=tmp_path), role="everything")
    with pytest.raises(ConfigError, match="--bundle or --model"):
        build_app(get_settings(data_dir=tmp_path, bundle=tiny_bundle), model="production")


def test_merge_keeps_start_order_and_stops_in_reverse() -> None:
    calls: list[str] = []

    def hook(name: str):  # type: ignore[no-untyped-def]
        async def run(_: object) -> None:
            calls.append(name)
        return run

    a = ServerHooks(on_startup=[hook("start a")], on_shutdown=[hook("stop a")])
    b = ServerHooks(on_startup=[hook("start b")], on_shutdown=[hook("stop b")])
    merged = merge_hooks(a, b)
    import asyncio

    for h in [*merged.on_startup, *merged.on_shutdown]:
        asyncio.run(h(None))  # type: ignore[arg-type]
    assert calls == ["start a", "start b", "stop b", "stop a"]
