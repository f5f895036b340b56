"""RegistryWatcher: follows an alias, hands over verified paths, survives bad artifacts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from prognos.bundle import MODEL_FILE, read_bundle
from prognos.lifecycle.registry import Registry
from prognos.lifecycle.stores import MemoryStore
from prognos.lifecycle.watcher import RegistryWatcher

MakeBundle = Callable[[str], Path]


@pytest.fixture
def mem_registry(tmp_path: Path) -> Registry:
    return Registry(MemoryStore(), tmp_path / "cache")


def _promote(registry: Registry, bundle: Path) -> int:
    v = registry.register(bundle).version.version
    registry.approve(v)
    registry.promote(v)
    return v


def _wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


def test_check_reports_each_alias_move_once(registry: Registry, make_bundle: MakeBundle) -> None:
    seen: list[str] = []
    watcher = RegistryWatcher(registry, "production", lambda p: seen.append(read_bundle(p).version))
    assert watcher.check() is None  # alias unset: nothing to do
    _promote(registry, make_bundle("a"))
    target = watcher.check()
    assert target is not None and target.version == 1
    assert watcher.check() is None  # unchanged
    _promote(registry, make_bundle("b"))
    assert watcher.check().version == 2  # type: ignore[union-attr]
    registry.rollback()
    assert watcher.check().version == 1  # type: ignore[union-attr]
    assert seen == ["synth-a", "synth-b", "synth-a"]
    assert watcher.errors == 0


def test_a_tampered_new_version_is_refused_and_the_old_one_kept(mem_registry: Registry,
                                                                 make_bundle: MakeBundle) -> None:
    seen: list[Path] = []
    watcher = RegistryWatcher(mem_registry, "production", seen.append)
    _promote(mem_registry, make_bundle("a"))
    watcher.check()
    v2 = mem_registry.register(make_bundle("b")).version
    mem_registry.store.write(f"{v2.prefix}/{MODEL_FILE}", b"tampered")
    mem_registry.approve(2)
    mem_registry.promote(2)
    assert watcher.check() is None
    assert (watcher.current, watcher.errors, len(seen)) == (1, 1, 1)
    mem_registry.rollback()  # production back on 1, which is what is served: nothing to do
    assert watcher.check() is None and watcher.errors == 1


def test_background_thread_follows_promotions(mem_registry: Registry, make_bundle: MakeBundle) -> None:
    seen: list[str] = []
    watcher = RegistryWatcher(mem_registry, "production", lambda p: seen.append(read_bundle(p).version),
                              interval_s=0.02)
    watcher.start()
    try:
        _promote(mem_registry, make_bundle("a"))
        _wait_for(lambda: seen == ["synth-a"])
        _promote(mem_registry, make_bundle("b"))
        _wait_for(lambda: seen == ["synth-a", "synth-b"])
    finally:
        watcher.stop()
    assert watcher.current == 2


def test_async_run_awaits_a_coroutine_callback(mem_registry: Registry, make_bundle: MakeBundle) -> None:
    seen: list[int] = []

    async def reload(path: Path) -> None:
        await asyncio.sleep(0)
        seen.append(int(read_bundle(path).version == "synth-a"))

    async def main() -> None:
        watcher = RegistryWatcher(mem_registry, "production", reload, interval_s=0.02)
        task = asyncio.create_task(watcher.run())
        _promote(mem_registry, make_bundle("a"))
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert seen == [1]


def test_interval_must_be_positive(mem_registry: Registry) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        RegistryWatcher(mem_registry, "production", print, interval_s=0)


def test_follow_model_resolves_and_hooks_the_watcher(tmp_path: Path, make_bundle: MakeBundle) -> None:
    from prognos.config import get_settings
    from prognos.errors import NotFoundError
    from prognos.lifecycle.registry import open_registry
    from prognos.lifecycle.watcher import follow_model
    from prognos.server import ServerHooks

    settings = get_settings(data_dir=tmp_path / "state", registry_poll_s=0.05)
    with pytest.raises(NotFoundError, match="alias 'production' is not set"):
        follow_model(settings, "production", ServerHooks())
    registry = open_registry(settings.registry_location, settings.registry_cache)
    _promote(registry, make_bundle("a"))
    registry.register(make_bundle("b"))

    pinned = follow_model(settings, "2", ServerHooks())  # a fixed version: served as is, not followed
    assert read_bundle(pinned.settings.bundle).version == "synth-b"  # type: ignore[arg-type]
    assert pinned.hooks == ServerHooks() and pinned.version == "2"

    followed = follow_model(settings, "production", ServerHooks())
    assert read_bundle(followed.settings.bundle).version == "synth-a"  # type: ignore[arg-type]
    assert len(followed.hooks.on_startup) == 1 and len(followed.hooks.on_shutdown) == 1

    class Service:  # the one method the hooks use: PredictionService.reload(path)
        def __init__(self) -> None:
            self.loaded: list[str] = []

        async def reload(self, path: Path) -> None:
            self.loaded.append(read_bundle(path).version)

    async def main() -> list[str]:
        service = Service()
        await followed.hooks.on_startup[0](service)  # type: ignore[arg-type]
        registry.approve(2)
        registry.promote(2)
        deadline = time.monotonic() + 10
        while not service.loaded and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await followed.hooks.on_shutdown[0](service)  # type: ignore[arg-type]
        return service.loaded

    assert asyncio.run(main()) == ["synth-b"]
