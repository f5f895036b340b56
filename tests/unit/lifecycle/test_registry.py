"""The registry over every store backend: versions, approval gate, aliases, rollback, verified fetches."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from prognos.bundle import MANIFEST_FILE, MODEL_FILE, read_bundle
from prognos.errors import BundleError, ConflictError, NotFoundError
from prognos.lifecycle.registry import INDEX_KEY, NotApprovedError, Registry, resolve_alias

MakeBundle = Callable[[str], Path]


def test_register_adds_a_pending_candidate(registry: Registry, make_bundle: MakeBundle) -> None:
    path = make_bundle("a")
    r = registry.register(path, source_run="run-123", actor="alice")
    assert r.created
    v = r.version
    manifest = read_bundle(path).manifest
    assert (v.version, v.status, v.registered_by, v.source_run) == (1, "pending", "alice", "run-123")
    assert v.bundle_version == manifest.version and v.bundle_sha256 == manifest.manifest_sha256
    assert v.metrics["rmse"] == manifest.validation_metrics["rmse"]
    assert registry.index().aliases == {"candidate": 1}
    assert registry.alias("production") is None
    # the bundle's files are in the store, content-addressed
    assert sorted(registry.store.list_keys(f"bundles/{v.bundle_sha256}/")) == sorted(
        f"bundles/{v.bundle_sha256}/{n}" for n in (*manifest.files, MANIFEST_FILE))


def test_registering_the_same_bundle_again_returns_its_version(registry: Registry, make_bundle: MakeBundle) -> None:
    first = registry.register(make_bundle("a"))
    again = registry.register(make_bundle("a"))
    assert not again.created and again.version.version == first.version.version
    assert [v.version for v in registry.versions()] == [1]


def test_register_refuses_a_broken_bundle(registry: Registry, tiny_bundle_copy_factory) -> None:
    path = tiny_bundle_copy_factory("broken")
    (path / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(BundleError, match="SHA-256"):
        registry.register(path)
    assert registry.versions() == []


def test_an_unapproved_version_cannot_be_promoted(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    with pytest.raises(NotApprovedError, match="version 1 is pending approval") as err:
        registry.promote(1)
    assert err.value.exit_code != 0
    assert registry.alias("production") is None


def test_approve_promote_rollback(registry: Registry, make_bundle: MakeBundle) -> None:
    for name in ("a", "b", "c"):
        registry.register(make_bundle(name))
    approved = registry.approve("v1", actor="bob")
    assert (approved.status, approved.approved_by) == ("approved", "bob") and approved.approved_at
    move = registry.promote(1)
    assert (move.previous, move.current, move.moved) == (None, 1, True)
    registry.approve(2)
    registry.promote("2")
    registry.approve(3)
    registry.promote(3)
    assert registry.alias("production").version == 3  # type: ignore[union-attr]
    back = registry.rollback()
    assert (back.previous, back.current) == (3, 2)
    assert registry.rollback().current == 1
    with pytest.raises(ConflictError, match="no earlier production version"):
        registry.rollback()
    assert registry.alias("production").version == 1  # type: ignore[union-attr]
    actions = [(e.action, e.version) for e in registry.index().events]
    assert actions[-3:] == [("promote", 3), ("rollback", 2), ("rollback", 1)]


def test_promote_takes_the_candidate_alias_away(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    registry.approve("candidate")
    registry.promote("candidate")
    assert registry.index().aliases == {"production": 1}
    assert not registry.promote(1).moved  # promoting it again changes nothing


def test_archive_rules(registry: Registry, make_bundle: MakeBundle) -> None:
    for name in ("a", "b", "c"):
        registry.register(make_bundle(name))
    for v in (1, 2, 3):
        registry.approve(v)
    registry.promote(1)
    registry.promote(2)
    with pytest.raises(ConflictError, match="in production"):
        registry.archive(2)
    assert registry.archive(1).status == "archived"
    with pytest.raises(ConflictError, match="archived"):
        registry.promote(1)
    with pytest.raises(ConflictError, match="archived"):
        registry.approve(1)
    registry.promote(3)
    # rollback skips the archived version 1 and lands on 2
    assert registry.rollback().current == 2
    with pytest.raises(ConflictError, match="no earlier"):
        registry.rollback()


def test_references(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    registry.register(make_bundle("b"))
    assert registry.get("v2").version == registry.get(2).version == registry.get("candidate").version == 2
    assert registry.get("synth-a").version == 1
    with pytest.raises(NotFoundError, match=r"no model version '7'.*versions: 1, 2"):
        registry.get(7)
    with pytest.raises(NotFoundError, match="alias 'production' is not set"):
        registry.get("production")


def test_list_as_dicts_carries_version_status_and_aliases(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    registry.register(make_bundle("b"))
    registry.approve(1)
    registry.promote(1)
    index = registry.index()
    rows = [v.to_dict(index.aliases_of(v.version)) for v in index.versions]
    assert [(r["version"], r["status"], r["aliases"]) for r in rows] == [
        (1, "approved", ["production"]), (2, "pending", ["candidate"])]
    json.dumps(rows)  # JSON-serialisable as is


def test_fetch_returns_a_verified_copy(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    path = registry.fetch(1)
    assert path.parent == registry.cache_dir
    assert read_bundle(path).manifest.manifest_sha256 == registry.get(1).bundle_sha256
    assert registry.fetch(1) == path  # cached


def test_fetch_refuses_a_tampered_stored_artifact(registry: Registry, make_bundle: MakeBundle) -> None:
    v = registry.register(make_bundle("a")).version
    blob = registry.store.read(f"{v.prefix}/{MODEL_FILE}")
    assert blob is not None
    registry.store.write(f"{v.prefix}/{MODEL_FILE}", blob.data[:-1] + bytes([blob.data[-1] ^ 1]))
    with pytest.raises(BundleError, match=r"registry version 1 .*model.onnx does not match its SHA-256"):
        registry.fetch(1)
    assert not any(registry.cache_dir.iterdir())  # nothing half-fetched is left to serve


def test_fetch_refuses_a_swapped_bundle(registry: Registry, make_bundle: MakeBundle) -> None:
    """A different but internally consistent bundle put under a registered version's key is refused."""
    v = registry.register(make_bundle("a")).version
    other = make_bundle("b")
    for name in (*v.files, MANIFEST_FILE):
        registry.store.upload(f"{v.prefix}/{name}", other / name)
    with pytest.raises(BundleError, match="not the one registered"):
        registry.fetch(1)


def test_a_damaged_cache_copy_is_fetched_again(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    path = registry.fetch(1)
    (path / MODEL_FILE).write_bytes(b"garbage")
    assert registry.fetch(1) == path
    read_bundle(path)  # intact again


def test_resolve_alias(registry: Registry, make_bundle: MakeBundle) -> None:
    registry.register(make_bundle("a"))
    with pytest.raises(NotFoundError, match="'production' is not set"):
        resolve_alias(registry, "production")
    registry.approve(1)
    registry.promote(1)
    path = resolve_alias(registry, "production")
    assert read_bundle(path).version == "synth-a"


def test_concurrent_registrations_lose_no_version(registry: Registry, make_bundle: MakeBundle) -> None:
    paths = [make_bundle(f"c{i}") for i in range(5)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(paths))

    def register(p: Path) -> None:
        barrier.wait()
        try:
            registry.register(p)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = registry.versions()
    assert sorted(v.version for v in versions) == [1, 2, 3, 4, 5]
    assert sorted(v.bundle_version for v in versions) == sorted(f"synth-c{i}" for i in range(5))


def test_an_unreadable_index_is_one_clear_error(registry: Registry) -> None:
    registry.store.write(INDEX_KEY, b"{not json")
    with pytest.raises(Exception, match="unreadable registry index") as err:
        registry.versions()
    assert err.value.exit_code != 0  # type: ignore[attr-defined]


def test_the_audit_trail_is_bounded(registry: Registry, make_bundle: MakeBundle,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from prognos.lifecycle import registry as registry_module

    monkeypatch.setattr(registry_module, "_MAX_EVENTS", 3)
    registry.register(make_bundle("a"))
    for _ in range(4):
        registry.archive(1)  # archiving twice records once
    registry.register(make_bundle("b"))
    registry.approve(2)
    registry.promote(2)
    assert [(e.action, e.version) for e in registry.index().events] == [
        ("register", 2), ("approve", 2), ("promote", 2)]
