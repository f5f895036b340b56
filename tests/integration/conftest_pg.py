"""A real PostgreSQL 15 server for tests: ``initdb`` + ``pg_ctl`` from the machine's binaries, run
as the ``postgres`` user (the server refuses root) in a private temp dir, on a free port, its
unix socket inside that dir. Started once per session, stopped at the end.

Use :func:`start_postgres` / :meth:`PostgresServer.stop`, or the ``postgres_server`` fixture in
``tests/integration/fleet/conftest.py``. ``create_database()`` gives each test an empty database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PG_BIN", "PostgresServer", "postgres_unavailable_reason", "start_postgres"]

PG_BIN = Path(os.environ.get("PROGNOS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def postgres_unavailable_reason() -> str | None:
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binaries not found ({PG_BIN / tool} missing; set PROGNOS_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
        if not shutil.which("runuser"):
            return "running as root without runuser(1) to drop to the postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    root: Path
    port: int
    _as_postgres: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """An empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self._as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, fsync: bool = False) -> PostgresServer:
    """Start a throw-away server (``fsync=False`` for speed in tests; benchmarks pass True)."""
    root = Path(tempfile.mkdtemp(prefix="prognos-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = dict(capture_output=True, text=True, timeout=120, cwd=root)
    out = subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync"], **run)  # type: ignore[call-overload]
    if out.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {out.stderr.strip()}")
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync={'on' if fsync else 'off'} "
            f"-c max_connections=100 -c shared_buffers=64MB")
    out = subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-o", opts,
                          "-l", str(root / "server.log"), "-w", "-t", "60", "start"], **run)  # type: ignore[call-overload]
    if out.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {out.stderr.strip()} {log[-2000:]}")
    return PostgresServer(root, port, as_postgres)
