"""Connecting to the fleet database and migrating it.

SQLite (the default, ``<data_dir>/prognos.db``) runs in WAL mode with ``synchronous=FULL``: a
commit returns only after the WAL is fsynced, so a reading acknowledged with 2xx survives
``kill -9`` and power loss. PostgreSQL (``postgresql+psycopg://...``) is durable by default.

Outages: a database that is down, read-only or out of disk surfaces as
:class:`~prognos.errors.StorageUnavailableError` (503 + Retry-After, gRPC UNAVAILABLE) through
:func:`storage_unavailable`, within ``database_timeout_s`` (connect timeout on PostgreSQL, lock
wait on SQLite) rather than a hang or a 500; nothing of the refused write was committed.
"""

from __future__ import annotations

import logging
import shutil
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from prognos.errors import ConfigError, StorageUnavailableError

__all__ = ["Database", "connect", "storage_unavailable", "upgrade"]

log = logging.getLogger("prognos.fleet")

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class Database:
    """An engine, session factories for reading and for writing, and (SQLite only) a write lock:
    SQLite allows one writer, and serialising writers here avoids ``database is locked`` retries."""

    engine: Engine
    sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    _write_lock: threading.Lock | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def writing(self) -> AbstractContextManager[Any]:
        """Hold while a write transaction runs (a no-op on PostgreSQL)."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    def dispose(self) -> None:
        self.engine.dispose()

    def free_bytes(self) -> int | None:
        """Free space on the SQLite database file's file system (bytes); None for a server database."""
        name = self.engine.url.database if self.dialect == "sqlite" else None
        if not name or name == ":memory:":
            return None
        return shutil.disk_usage(Path(name).expanduser().resolve().parent).free

    def ping(self) -> None:
        """Raise unless the database answers a query."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def probe_write(self) -> None:
        """Raise unless the database commits a write: rewrites the migration stamp with itself
        (same value, so nothing changes), which fails when the database is down, read-only or out
        of disk, as a real write would."""
        with self.writing(), self.write_sessions() as session, session.begin():
            session.connection().exec_driver_sql("UPDATE alembic_version SET version_num = version_num")


def storage_unavailable(exc: BaseException) -> StorageUnavailableError | None:
    """The 503 for a database error that is the database's state, not the request's: connection
    refused or lost, read-only, disk full, lock wait exceeded. None for anything else (a constraint
    violation is the caller's conflict; a bug stays a bug)."""
    if isinstance(exc, StorageUnavailableError):
        return exc
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return None
    if not (isinstance(exc, OperationalError) or exc.connection_invalidated
            or type(exc).__name__ in ("InterfaceError", "InternalError")):
        return None
    reason = " ".join(str(exc.orig).split())[:200]
    return StorageUnavailableError(f"the fleet database cannot store writes now ({reason}); nothing of this "
                                   "request was stored; retry later")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The lock wait is sqlite3's ``timeout`` (connect_args): bounded, so a write answers 503, never hangs.
    # isolation_level=None hands transaction control to SQLAlchemy's BEGIN (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers BEGIN IMMEDIATE: taking the file lock up front means a read-then-write transaction
    # cannot deadlock against a writer in another process (a CLI command beside the server).
    # Readers BEGIN deferred and run concurrently with the writer (WAL).
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("prognos_write") else "BEGIN")


def connect(url: str, *, create_dirs: bool = True, timeout_s: float = 5.0) -> Database:
    """Open the database at ``url`` (not migrated: call :func:`upgrade`). ``timeout_s`` bounds a
    connection attempt (PostgreSQL) and a wait for the write lock (SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL (PROGNOS_DATABASE_URL) {url!r} is not valid: {exc}") from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and create_dirs:
            path = Path(parsed.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            # Owner-only from the first byte (readings, alerts, key hashes): SQLite gives its -wal
            # and -shm files the database file's mode.
            path.touch(mode=0o600, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": timeout_s}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=timeout_s)
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": max(1, round(timeout_s))}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"database URL (PROGNOS_DATABASE_URL) {shown}: {exc}") from None
    lock = None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        lock = threading.Lock()
    writer = engine.execution_options(prognos_write=True)
    return Database(engine, sessionmaker(engine, expire_on_commit=False),
                    sessionmaker(writer, expire_on_commit=False), lock)


def upgrade(db: Database, revision: str = "head") -> list[str]:
    """Apply the Alembic migrations up to ``revision``; returns the tables present afterwards."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    try:
        with db.writing(), db.engine.execution_options(prognos_write=True).begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # one line, whatever the driver wrapped
        url = db.engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"database {url} (PROGNOS_DATABASE_URL) is not reachable: {reason}") from None
    return sorted(inspect(db.engine).get_table_names())
