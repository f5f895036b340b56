"""The model registry: numbered versions of bundles, an approval gate, and aliases.

::

    STORE/                              any :class:`~prognos.lifecycle.stores.ArtifactStore`
      index.json                        versions, aliases, production history, audit events
      bundles/<manifest sha256>/        bundle.json, model.onnx, preprocessing.json

Life of a version (the SageMaker model-registry flow of the planning documents)::

    register ──> pending ──approve──> approved ──promote──> alias "production"
                   │                     │                     │ rollback: back to the
                   └──────archive────────┴──> archived          │ previous production version

``register`` also points the ``candidate`` alias at the new version. Only an approved, not
archived version can be promoted; the version in production cannot be archived.

Bundle files are stored under their manifest's SHA-256 (content addressed), so two machines
registering at once never overwrite each other's files; only the small index is contended, and it
is updated with a conditional write (retried on a lost race). Every :meth:`Registry.fetch` copies
the bundle into a local cache and verifies it with :func:`prognos.bundle.read_bundle` *and*
against the manifest digest recorded at registration: a tampered or swapped artifact is refused.
"""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from prognos.bundle import MANIFEST_FILE, read_bundle
from prognos.errors import BundleError, ConflictError, DataFormatError, NotFoundError
from prognos.lifecycle.stores import ArtifactStore, StaleWriteError, open_store

__all__ = [
    "ALIASES",
    "AliasMove",
    "ModelVersion",
    "NotApprovedError",
    "Registration",
    "Registry",
    "RegistryEvent",
    "RegistryIndex",
    "open_registry",
    "resolve_alias",
]

log = logging.getLogger("prognos.lifecycle")

INDEX_KEY = "index.json"
INDEX_FORMAT = "prognos.registry/1"
ALIASES = ("candidate", "production")
_MAX_RACE_RETRIES = 20
_MAX_EVENTS = 1000  # newest audit events kept in the index
_T = TypeVar("_T")


class NotApprovedError(ConflictError):
    """Promotion of a version that has not been approved."""

    grpc_code = "FAILED_PRECONDITION"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _actor(given: str | None) -> str:
    if given:
        return given
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


class ModelVersion(BaseModel):
    """One registered bundle. Times are UTC ISO-8601."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    version: int
    bundle_version: str
    bundle_sha256: str = Field(description="the manifest's own SHA-256: identifies the bundle's content")
    files: dict[str, str] = Field(description="SHA-256 of every bundle file, as in its manifest")
    dataset: str
    model: str
    metrics: dict[str, Any] = Field(default_factory=dict, description="validation metrics (RMSE in cycles)")
    created_at: str = Field(description="when the bundle was trained")
    registered_at: str
    registered_by: str
    source_run: str | None = Field(default=None, description="e.g. an MLflow run id")
    approval: Literal["pending", "approved"] = "pending"
    approved_by: str | None = None
    approved_at: str | None = None
    archived_at: str | None = None

    @property
    def status(self) -> str:
        """``pending``, ``approved`` or ``archived``."""
        return "archived" if self.archived_at else self.approval

    @property
    def prefix(self) -> str:
        return f"bundles/{self.bundle_sha256}"

    def to_dict(self, aliases: list[str] | None = None) -> dict[str, Any]:
        d = self.model_dump()
        d.update(status=self.status, aliases=aliases or [])
        return d


class RegistryEvent(BaseModel):
    """An audit record: who did what to which version, when."""

    at: str
    action: str
    version: int | None
    actor: str
    detail: str = ""


class RegistryIndex(BaseModel):
    """``index.json``."""

    format: str = INDEX_FORMAT
    versions: list[ModelVersion] = Field(default_factory=list)
    aliases: dict[str, int] = Field(default_factory=dict)
    production_history: list[int] = Field(default_factory=list, description="earlier production versions, oldest first")
    events: list[RegistryEvent] = Field(default_factory=list)

    def aliases_of(self, version: int) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if v == version)


@dataclass(frozen=True)
class Registration:
    """The outcome of :meth:`Registry.register`; ``created`` is False when the bundle was already there."""

    version: ModelVersion
    created: bool


@dataclass(frozen=True)
class AliasMove:
    """An alias moved from ``previous`` to ``current`` (version numbers; ``None``: unset)."""

    alias: str
    previous: int | None
    current: int | None

    @property
    def moved(self) -> bool:
        return self.previous != self.current


class Registry:
    """Versions, approval and aliases over an :class:`ArtifactStore`; fetched bundles land in ``cache_dir``."""

    def __init__(self, store: ArtifactStore, cache_dir: Path) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir)

    # --- reading ----------------------------------------------------------------------------

    def index(self) -> RegistryIndex:
        """The current index (empty if nothing was ever registered)."""
        return self._read()[0]

    def _read(self) -> tuple[RegistryIndex, str | None]:
        blob = self.store.read(INDEX_KEY)
        if blob is None:
            return RegistryIndex(), None
        try:
            data = json.loads(blob.data)
            index = RegistryIndex.model_validate(data)
        except (json.JSONDecodeError, UnicodeDecodeError, PydanticValidationError) as exc:
            raise DataFormatError(f"{self.store.url}/{INDEX_KEY}: unreadable registry index ({exc})") from None
        if index.format != INDEX_FORMAT:
            raise DataFormatError(f"{self.store.url}/{INDEX_KEY}: unsupported format {index.format!r}")
        return index, blob.tag

    def versions(self) -> list[ModelVersion]:
        return list(self.index().versions)

    def get(self, ref: str | int) -> ModelVersion:
        """A version by number (``3`` or ``v3``), alias (``production``) or bundle version string."""
        return _find(self.index(), ref, self.store.url)

    def alias(self, name: str) -> ModelVersion | None:
        """The version an alias points at, or ``None`` when it is unset."""
        index = self.index()
        number = index.aliases.get(name)
        return None if number is None else _find(index, number, self.store.url)

    # --- writing ----------------------------------------------------------------------------

    def _update(self, change: Callable[[RegistryIndex], _T]) -> _T:
        """Read-modify-write of the index, retried when another writer got there first."""
        for _ in range(_MAX_RACE_RETRIES):
            index, tag = self._read()
            result = change(index)
            # The index is read on every poll of every following server: keep its audit trail bounded.
            del index.events[:-_MAX_EVENTS]
            body = (index.model_dump_json(indent=1) + "\n").encode()
            try:
                if tag is None:
                    self.store.write(INDEX_KEY, body, create=True)
                else:
                    self.store.write(INDEX_KEY, body, expect=tag)
            except StaleWriteError:
                log.info("registry index changed during an update; retrying")
                continue
            return result
        raise ConflictError(f"{self.store.url}: registry index kept changing; gave up after {_MAX_RACE_RETRIES} tries")

    def register(self, bundle_path: Path, *, source_run: str | None = None, actor: str | None = None) -> Registration:
        """Verify a bundle, copy it into the store and record it as a new pending version (the
        ``candidate``). Registering the same bundle again returns the existing version."""
        bundle = read_bundle(bundle_path)
        m = bundle.manifest
        existing = next((v for v in self.versions() if v.bundle_sha256 == m.manifest_sha256), None)
        if existing is not None:
            return Registration(existing, created=False)
        prefix = f"bundles/{m.manifest_sha256}"
        # Files first, index last: the index never names files that are not there yet.
        for name in (*m.files, MANIFEST_FILE):
            self.store.upload(f"{prefix}/{name}", bundle.path / name)
        who = _actor(actor)

        def add(index: RegistryIndex) -> Registration:
            for v in index.versions:
                if v.bundle_sha256 == m.manifest_sha256:  # registered concurrently by someone else
                    return Registration(v, created=False)
            number = max((v.version for v in index.versions), default=0) + 1
            mv = ModelVersion(
                version=number, bundle_version=m.version, bundle_sha256=m.manifest_sha256, files=dict(m.files),
                dataset=m.dataset, model=str(m.model.get("name", "?")), metrics=dict(m.validation_metrics),
                created_at=m.created_at, registered_at=_now(), registered_by=who, source_run=source_run,
            )
            index.versions.append(mv)
            index.aliases["candidate"] = number
            index.events.append(RegistryEvent(at=_now(), action="register", version=number, actor=who,
                                              detail=m.version))
            return Registration(mv, created=True)

        return self._update(add)

    def approve(self, ref: str | int, *, actor: str | None = None) -> ModelVersion:
        """Mark a pending version approved (a no-op if it already is)."""
        who = _actor(actor)

        def change(index: RegistryIndex) -> ModelVersion:
            mv = _find(index, ref, self.store.url)
            if mv.archived_at:
                raise ConflictError(f"version {mv.version} is archived; it cannot be approved")
            if mv.approval != "approved":
                mv.approval, mv.approved_by, mv.approved_at = "approved", who, _now()
                index.events.append(RegistryEvent(at=_now(), action="approve", version=mv.version, actor=who))
            return mv.model_copy()

        return self._update(change)

    def promote(self, ref: str | int, *, actor: str | None = None) -> AliasMove:
        """Point ``production`` at an approved version; the previous one is remembered for rollback."""
        who = _actor(actor)

        def change(index: RegistryIndex) -> AliasMove:
            mv = _find(index, ref, self.store.url)
            if mv.archived_at:
                raise ConflictError(f"version {mv.version} is archived; it cannot be promoted")
            if mv.approval != "approved":
                raise NotApprovedError(
                    f"version {mv.version} is pending approval; run `prognos models approve {mv.version}` first"
                )
            previous = index.aliases.get("production")
            if previous == mv.version:
                return AliasMove("production", previous, previous)
            if previous is not None:
                index.production_history.append(previous)
            index.aliases["production"] = mv.version
            if index.aliases.get("candidate") == mv.version:
                del index.aliases["candidate"]
            index.events.append(RegistryEvent(at=_now(), action="promote", version=mv.version, actor=who,
                                              detail=f"from {previous}"))
            return AliasMove("production", previous, mv.version)

        return self._update(change)

    def rollback(self, *, actor: str | None = None) -> AliasMove:
        """Move ``production`` back to the previous production version (skipping archived ones)."""
        who = _actor(actor)

        def change(index: RegistryIndex) -> AliasMove:
            current = index.aliases.get("production")
            archived = {v.version for v in index.versions if v.archived_at}
            while index.production_history:
                target = index.production_history.pop()
                if target not in archived and target != current:
                    index.aliases["production"] = target
                    index.events.append(RegistryEvent(at=_now(), action="rollback", version=target, actor=who,
                                                      detail=f"from {current}"))
                    return AliasMove("production", current, target)
            raise ConflictError("no earlier production version to roll back to")

        return self._update(change)

    def archive(self, ref: str | int, *, actor: str | None = None) -> ModelVersion:
        """Retire a version: it can no longer be approved, promoted or rolled back to."""
        who = _actor(actor)

        def change(index: RegistryIndex) -> ModelVersion:
            mv = _find(index, ref, self.store.url)
            if index.aliases.get("production") == mv.version:
                raise ConflictError(f"version {mv.version} is in production; promote another or roll back first")
            if not mv.archived_at:
                mv.archived_at = _now()
                if index.aliases.get("candidate") == mv.version:
                    del index.aliases["candidate"]
                index.events.append(RegistryEvent(at=_now(), action="archive", version=mv.version, actor=who))
            return mv.model_copy()

        return self._update(change)

    # --- fetching ---------------------------------------------------------------------------

    def fetch(self, ref: str | int) -> Path:
        """A verified local copy of a version's bundle (downloaded once into the cache, verified on
        every call). Raises :class:`BundleError` if the stored or cached artifact was tampered with."""
        mv = self.get(ref)
        dst = self.cache_dir / f"v{mv.version}-{mv.bundle_sha256[:16]}"
        if dst.is_dir():
            try:
                return self._verified(dst, mv)
            except BundleError as exc:
                log.warning("cached bundle %s is damaged (%s); fetching it again", dst, exc)
                shutil.rmtree(dst, ignore_errors=True)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=self.cache_dir))
        try:
            for name in (*mv.files, MANIFEST_FILE):
                self.store.download(f"{mv.prefix}/{name}", tmp / name)
            self._verified(tmp, mv)
            try:
                tmp.rename(dst)
            except OSError:  # another process cached it first; use theirs (verified below)
                shutil.rmtree(tmp, ignore_errors=True)
            return self._verified(dst, mv)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _verified(self, path: Path, mv: ModelVersion) -> Path:
        try:
            bundle = read_bundle(path)
        except BundleError as exc:
            raise BundleError(f"registry version {mv.version} ({self.store.url}/{mv.prefix}): {exc}") from None
        if bundle.manifest.manifest_sha256 != mv.bundle_sha256:
            raise BundleError(f"registry version {mv.version} ({self.store.url}/{mv.prefix}): the bundle is not the "
                              "one registered (manifest digest differs)")
        return path


def _find(index: RegistryIndex, ref: str | int, where: str) -> ModelVersion:
    text = str(ref).strip()
    number: int | None = None
    if text in index.aliases:
        number = index.aliases[text]
    elif text.lower().lstrip("v").isdigit():
        number = int(text.lower().lstrip("v"))
    for v in index.versions:
        if v.version == number or (number is None and v.bundle_version == text):
            return v
    if text in ALIASES:
        raise NotFoundError(f"alias {text!r} is not set in the registry at {where}")
    known = ", ".join(str(v.version) for v in index.versions) or "none"
    raise NotFoundError(f"no model version {text!r} in the registry at {where} (versions: {known})")


def open_registry(location: str | Path, cache_dir: Path, *, s3_client: Any = None) -> Registry:
    """A registry at a directory or ``s3://bucket/prefix``; fetched bundles are cached in ``cache_dir``."""
    return Registry(open_store(location, s3_client=s3_client), cache_dir)


def resolve_alias(registry: Registry, alias: str = "production") -> Path:
    """The verified local bundle path of the version an alias (or version reference) points at."""
    mv = registry.alias(alias) if alias in ALIASES else registry.get(alias)
    if mv is None:
        raise NotFoundError(f"alias {alias!r} is not set in the registry at {registry.store.url}")
    return registry.fetch(mv.version)
