"""Database setup: migrations build exactly the ORM schema; SQLite is durable (WAL, synchronous=FULL);
bad URLs are one clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from prognos.errors import ConfigError
from prognos.fleet.database import connect, upgrade
from prognos.fleet.tables import Base


def test_migrations_match_the_orm_schema_and_are_idempotent(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'sub' / 'fleet.db'}")  # the folder is created
    tables = upgrade(db)
    assert {"alembic_version", "alerts", "api_keys", "engines", "predictions", "readings"} <= set(tables)
    assert upgrade(db) == tables
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    db.dispose()


def test_sqlite_is_wal_with_full_sync(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'fleet.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: fsync on every commit
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_bad_database_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="PROGNOS_DATABASE_URL"):
        connect(url)


def test_unreachable_database_is_a_config_error() -> None:
    db = connect("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    with pytest.raises(ConfigError, match="not reachable"):
        upgrade(db)
