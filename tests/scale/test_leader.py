"""Who may write and who runs the scheduled jobs: one server per SQLite file; one leader per
PostgreSQL database, taken over when it goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from prognos.errors import ConfigError
from prognos.fleet.leader import Leadership, hold_sqlite_writer
from tests.integration.conftest_pg import PostgresServer


def test_a_second_server_on_one_sqlite_file_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    first = hold_sqlite_writer(url)
    assert first is not None
    with pytest.raises(ConfigError, match=r"another prognos server \(pid \d+\) is writing to this SQLite file"):
        hold_sqlite_writer(url)
    first.release()
    again = hold_sqlite_writer(url)  # free once the first server is gone
    assert again is not None
    again.release()
    assert hold_sqlite_writer("postgresql+psycopg://u@h/db") is None


def test_exactly_one_leader_per_postgres_database_and_a_takeover(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    engines = [create_engine(url) for _ in range(3)]
    try:
        replicas = [Leadership(e) for e in engines]
        assert [r.is_leader() for r in replicas] == [True, False, False]
        assert [r.is_leader() for r in replicas] == [True, False, False]  # stable
        replicas[0].release()  # the leader stops (its connection closes: the lock goes with it)
        assert [r.is_leader() for r in replicas[1:]] == [True, False]
    finally:
        for r in replicas:
            r.release()
        for e in engines:
            e.dispose()
