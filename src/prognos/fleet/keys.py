"""API keys: created once (the secret is shown at creation and never again), stored as the
SHA-256 of the secret, listed by a short prefix, revoked by id.

A key is ``pk_`` + 43 URL-safe characters (256 random bits). With that much entropy a plain
SHA-256 is enough: there is nothing to brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from prognos.data.validation import MAX_NAME_CHARS, check_text, shown
from prognos.errors import NotFoundError, ValidationError
from prognos.fleet.records import iso
from prognos.fleet.store import FleetStore
from prognos.fleet.tables import ApiKeyRow, utcnow

__all__ = ["ROLES", "ApiKey", "CreatedKey", "KeyStore", "hash_key"]

ROLES = ("viewer", "operator", "admin")
_PREFIX_LEN = 10


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "created_at": iso(self.created_at), "revoked_at": iso(self.revoked_at), "active": self.active}


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its secret — the only time the secret exists outside the client."""

    key: ApiKey
    secret: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.key.to_dict(), "key": self.secret}


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, row.role, row.prefix, row.created_at, row.revoked_at)


class KeyStore:
    def __init__(self, store: FleetStore) -> None:
        self.db = store.db

    def create(self, role: str, name: str | None = None) -> CreatedKey:
        if role not in ROLES:
            raise ValidationError(f"role: {shown(role)} is not one of {', '.join(ROLES)}")
        if name is not None and not check_text(name, "name", MAX_NAME_CHARS):
            raise ValidationError(f"name: must be 1-{MAX_NAME_CHARS} characters")
        secret = "pk_" + secrets.token_urlsafe(32)
        with self.db.writing(), self.db.write_sessions.begin() as s:
            row = ApiKeyRow(name=name or f"{role} key", role=role, prefix=secret[:_PREFIX_LEN],
                            key_hash=hash_key(secret), created_at=utcnow())
            s.add(row)
            s.flush()
            return CreatedKey(_key(row), secret)

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        with self.db.sessions() as s:
            stmt = select(ApiKeyRow).order_by(ApiKeyRow.id)
            if not include_revoked:
                stmt = stmt.where(ApiKeyRow.revoked_at.is_(None))
            return [_key(r) for r in s.scalars(stmt)]

    def revoke(self, key_id: int) -> ApiKey:
        with self.db.writing(), self.db.write_sessions.begin() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFoundError(f"API key {key_id} not found")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            s.flush()
            return _key(row)

    def lookup(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None."""
        with self.db.sessions() as s:
            row = s.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(secret))).first()
            return None if row is None or row.revoked_at is not None else _key(row)
