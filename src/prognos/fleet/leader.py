"""Several server processes on one database: who runs the scheduled jobs, and who may write.

PostgreSQL (several gateways): :class:`Leadership` holds a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own. The process holding it runs the scheduled
jobs (retention, the drift alert); the others skip their turns. When the leader dies its
connection closes, PostgreSQL releases the lock, and the next process to try takes over.

SQLite (one process): :func:`hold_sqlite_writer` takes an exclusive ``flock`` on
``<database>.writer.lock`` for the life of the server, so a second ``prognos serve`` on the same
file stops at start-up with a clear error instead of competing for the one write lock. (Short
CLI commands such as ``prognos ingest`` still share the file through SQLite's own locking.)
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from prognos.errors import ConfigError

__all__ = ["Leadership", "SqliteWriterLock", "hold_sqlite_writer"]

log = logging.getLogger("prognos.fleet")

#: The advisory lock key of the scheduled jobs (a stable 31-bit number derived from a name).
JOBS_LOCK_KEY = zlib.crc32(b"prognos.scheduled-jobs") & 0x7FFFFFFF


class Leadership:
    """``is_leader()``: True in exactly one process per PostgreSQL database (always True on SQLite)."""

    def __init__(self, engine: Any, key: int = JOBS_LOCK_KEY) -> None:
        self.engine, self.key = engine, key
        self._conn: Any = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            try:
                if self._conn is not None:
                    self._conn.execute(text("SELECT 1"))  # still ours? (a dropped connection lost the lock)
                    self._conn.commit()  # no transaction left open (the advisory lock is the session's)
                    return True
                conn = self.engine.connect()
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
                conn.commit()
                if got:
                    self._conn = conn
                    log.info("this process runs the scheduled jobs (advisory lock %d)", self.key)
                    return True
                conn.close()
                return False
            except Exception as exc:  # the database is unreachable: nobody here leads until it is back
                log.warning("leadership check failed: %s", exc)
                if self._conn is not None:
                    try:
                        self._conn.invalidate()
                    finally:
                        self._conn = None
                return False

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                    self._conn.close()
                except Exception:  # closing the connection releases the lock anyway
                    pass
                self._conn = None


class SqliteWriterLock:
    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path, self._handle = path, handle

    def release(self) -> None:
        import fcntl

        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def hold_sqlite_writer(url: str) -> SqliteWriterLock | None:
    """Take the writer lock of the SQLite database at ``url`` (None for other databases).
    Raises :class:`ConfigError` when another server holds it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    import fcntl

    path = Path(parsed.database).expanduser().resolve().with_name(Path(parsed.database).name + ".writer.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the life of the server
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"database {parsed.database}: another prognos server ({holder}) is writing to this SQLite "
                          "file; SQLite takes one server process (use PostgreSQL for several, see docs/scaling.md)"
                          ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return SqliteWriterLock(path, handle)
