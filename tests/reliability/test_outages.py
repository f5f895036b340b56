"""Dependency outages and crashes during ingestion, against the real ``prognos serve``:

* PostgreSQL stopped for 15 s: every write is answered 2xx or 503 + Retry-After within a bounded
  time (no hang, no 500), ``/ready`` is 503 during the outage and 200 after, recovery needs no
  restart, and no acknowledged reading is lost;
* ``kill -9`` of the server during ingestion, on SQLite and PostgreSQL: after a restart every
  reading acknowledged with 2xx is stored;
* a full disk under the SQLite state directory (a 3 MiB tmpfs): writes 503, ``/ready`` 503 (less
  free space than ``storage_min_free_mb``), and both recover when the file system grows, without a
  restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import RestartablePostgres, Served, heavy, long_readings, serve


@dataclass
class Ingest:
    """Clients that post one reading at a time, resending a cycle until it is acknowledged."""

    server: Served
    rows: list[dict[str, object]]
    engines: int = 2
    expect_disconnects: bool = False
    acknowledged: dict[str, set[int]] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Ingest:
        for k in range(self.engines):
            t = threading.Thread(target=self._run, args=(f"o{k}",), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self, engine: str) -> None:
        acked = self.acknowledged.setdefault(engine, set())
        with self.server.client(timeout=60) as c:
            i = 0
            while not self.stop.is_set() and i < len(self.rows):
                row = self.rows[i]
                started = time.monotonic()
                try:
                    r = c.post(f"/api/v1/engines/{engine}/readings", json=[row])
                except httpx.HTTPError as exc:  # unacknowledged: resent (a killed server cannot answer)
                    self.statuses[0] = self.statuses.get(0, 0) + 1
                    if not self.expect_disconnects:
                        self.bad.append(f"{engine}: {exc!r}")
                    time.sleep(0.05)
                    continue
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
                if r.status_code in (200, 201):
                    acked.add(int(row["cycle"]))  # type: ignore[call-overload]
                    i += 1
                elif r.status_code == 503:
                    if "retry-after" not in r.headers:
                        self.bad.append(f"{engine}: 503 without Retry-After")
                    time.sleep(0.2)
                else:
                    self.bad.append(f"{engine}: {r.status_code} {r.text[:200]}")
                    i += 1

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(90)

    def total(self) -> int:
        return sum(len(v) for v in self.acknowledged.values())


def _stored(server: Served, engine: str) -> set[int]:
    with server.client() as c:
        r = c.get(f"/api/v1/engines/{engine}/readings", params={"limit": 5000})
        assert r.status_code == 200, r.text
        return {int(item["cycle"]) for item in r.json()["items"]}


def _wait(cond, what: str, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _ready(server: Served) -> int:
    try:
        return httpx.get(f"{server.url}/ready", timeout=10).status_code
    except httpx.HTTPError:
        return 0


def test_postgresql_stopped_for_15_s_during_ingestion(tmp_path: Path, tiny_bundle: Path,
                                                      postgres: RestartablePostgres) -> None:
    url = postgres.server.create_database()
    rows = long_readings(tiny_bundle, 3000)
    with serve(tmp_path, tiny_bundle, database_url=url, rate_limit_per_s="0", database_timeout_s="3") as server:
        load = Ingest(server, rows).start()
        _wait(lambda: load.total() >= 20, "ingestion to run")
        readiness: list[tuple[str, int]] = []
        postgres.stop()
        try:
            stopped_at = time.monotonic()
            while time.monotonic() - stopped_at < 15:
                readiness.append(("down", _ready(server)))
                time.sleep(0.5)
            during = dict(load.statuses)
        finally:
            postgres.start()
        _wait(lambda: _ready(server) == 200, "/ready 200 after PostgreSQL is back", 60)
        mark = load.total()
        _wait(lambda: load.total() >= mark + 20, "ingestion to resume without a restart", 60)
        load.finish()
        lost = {e: sorted(acked - _stored(server, e)) for e, acked in load.acknowledged.items()}
        predict = httpx.post(f"{server.url}/api/v1/predict", json={"engine_id": "p", "sensor_data": rows[:25]},
                             timeout=30)
    print(f"\nPostgreSQL outage: statuses {load.statuses} (before restart: {during}), slowest answer "
          f"{load.slowest_s:.2f} s, /ready during the outage {sorted({s for _, s in readiness})}, "
          f"{load.total()} readings acknowledged, lost {sum(map(len, lost.values()))}")
    assert not load.bad, load.bad[:10]
    assert set(load.statuses) <= {200, 201, 503}, load.statuses
    assert during.get(503, 0) > 0, "no write was attempted during the outage"
    assert load.slowest_s < 15, f"a write waited {load.slowest_s:.1f} s for an answer"
    late = [s for (_, s) in readiness[4:]]  # after the first 2 s of the outage
    assert late and all(s == 503 for s in late), readiness
    assert not any(lost.values()), lost
    assert predict.status_code == 200  # predictions never needed the database


@heavy
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_acknowledged_reading_survives_kill_9(tmp_path: Path, tiny_bundle: Path, database: str,
                                                    request: pytest.FixtureRequest) -> None:
    settings = {"rate_limit_per_s": "0"}
    if database == "postgresql":
        settings["database_url"] = request.getfixturevalue("postgres").server.create_database()
    rows = long_readings(tiny_bundle, 3000)
    with serve(tmp_path, tiny_bundle, **settings) as server:
        load = Ingest(server, rows, engines=3, expect_disconnects=True).start()
        _wait(lambda: load.total() >= 150, "ingestion to run")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        load.finish()
    acknowledged = {e: set(a) for e, a in load.acknowledged.items()}
    with serve(tmp_path, tiny_bundle, **settings) as again:
        lost = {e: sorted(acked - _stored(again, e)) for e, acked in acknowledged.items()}
    print(f"\nkill -9 on {database}: {sum(map(len, acknowledged.values()))} readings acknowledged, "
          f"lost {sum(map(len, lost.values()))}")
    assert sum(map(len, acknowledged.values())) >= 150
    assert not any(lost.values()), lost


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs to hold the state directory (needs root and mount(8); skipped otherwise)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a size-limited file system needs root and mount(8)")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@heavy
def test_a_full_disk_answers_503_and_recovers(tmp_path: Path, tiny_bundle: Path, small_disk: Path) -> None:
    rows = long_readings(tiny_bundle, 500)
    with serve(tmp_path, tiny_bundle, rate_limit_per_s="0", data_dir=str(small_disk / "state"),
               storage_min_free_mb="1") as server:
        statuses: list[int] = []
        with server.client() as c:
            for i in range(200):
                r = c.post(f"/api/v1/engines/d{i}/readings", json=rows)
                statuses.append(r.status_code)
                assert r.status_code in (200, 201, 503), r.text[:300]
                if r.status_code == 503:
                    assert int(r.headers["retry-after"]) >= 1
                    break
            ready_full = _ready(server)
            refused_at = len(statuses) - 1
            # Space comes back: the same mount grows; nothing is restarted.
            subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
            _wait(lambda: _ready(server) == 200, "/ready 200 once space is back", 30)
            after = c.post(f"/api/v1/engines/d{refused_at}/readings", json=rows)
            stored = [c.get(f"/api/v1/engines/d{i}/readings", params={"limit": 1}).json()["total"]
                      for i in range(refused_at)]
    print(f"\nfull disk: {refused_at} writes of {len(rows)} readings stored, then {statuses[-1]}; /ready "
          f"{ready_full}; after space returned: {after.status_code}")
    assert statuses[-1] == 503, "the 3 MiB disk never filled"
    assert ready_full == 503
    assert after.status_code == 201
    assert stored == [len(rows)] * refused_at  # nothing acknowledged before the disk filled was lost
