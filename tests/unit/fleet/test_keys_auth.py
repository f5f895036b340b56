from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from prognos.errors import NotFoundError, RateLimitedError, ValidationError
from prognos.fleet.auth import ApiKeyAuthenticator
from prognos.fleet.database import connect, upgrade
from prognos.fleet.keys import KeyStore
from prognos.fleet.ratelimit import RateLimiter
from prognos.fleet.store import FleetStore
from prognos.serving.http.auth import Role


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    db = connect(f"sqlite:///{tmp_path / 'k.db'}")
    upgrade(db)
    yield KeyStore(FleetStore(db))
    db.dispose()


def test_keys_are_random_hashed_at_rest_and_listed_by_prefix(keys: KeyStore) -> None:
    a, b = keys.create("operator", "line 1"), keys.create("viewer")
    assert a.secret != b.secret and len(a.secret) >= 43
    with keys.db.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT key_hash FROM api_keys ORDER BY id"))]
        dump = "\n".join(str(r) for r in conn.execute(text("SELECT * FROM api_keys")))
    assert stored == [hashlib.sha256(s.encode()).hexdigest() for s in (a.secret, b.secret)]
    assert a.secret not in dump and b.secret not in dump
    listed = keys.list()
    assert [(k.role, k.name, k.prefix) for k in listed] == [("operator", "line 1", a.secret[:10]),
                                                            ("viewer", "viewer key", b.secret[:10])]
    with pytest.raises(ValidationError, match="role"):
        keys.create("root")
    with pytest.raises(NotFoundError):
        keys.revoke(99)


def test_authenticator_roles_admin_token_revocation_and_rate_limit(keys: KeyStore) -> None:
    op = keys.create("operator")
    auth = ApiKeyAuthenticator(keys, admin_token="s3cret", limiter=RateLimiter(1.0, 2, clock=lambda: 0.0))
    p = auth.authenticate(op.secret)
    assert p is not None and p.role == Role.OPERATOR and op.key.prefix in p.name
    admin = auth.authenticate("s3cret")
    assert admin is not None and admin.role == Role.ADMIN
    assert auth.authenticate(None) is None and auth.authenticate("pk_guess") is None
    assert auth.authenticate(op.secret) is not None  # the second of a burst of 2
    with pytest.raises(RateLimitedError) as err:  # a third at the same instant is over the limit
        auth.authenticate(op.secret)
    assert err.value.http_status == 429 and err.value.retry_after_s > 0
    keys.revoke(op.key.id)
    auth.forget()
    assert auth.authenticate(op.secret) is None
