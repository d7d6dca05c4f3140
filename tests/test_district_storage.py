"""The district's storage seam: `open_storage` picks the backend from the `--db` value, and
a backend's failures reach its callers as the seam's own `StorageError`."""

from __future__ import annotations

import random
import threading
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.ports import free_port
from bench.store import day_events
from district import migrations
from district.backends import open_storage
from district.sqlite import SQLiteStorage
from district.storage import StorageError, UnsupportedStorage
from sensors.errors import PoskoError
from sync.batch import Batch


def test_district_storage_opens_sqlite_for_a_file_path(tmp_path: Path) -> None:
    with open_storage(str(tmp_path / "district.db")) as storage:
        assert isinstance(storage, SQLiteStorage)
        assert storage.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert storage.count() == 0
    assert (tmp_path / "district.db").is_file()


def test_district_storage_unreachable_postgresql_fails_without_echoing_the_password() -> None:
    """Nothing listens on the port: a `StorageError` a log may hold, no password in it."""
    address = f"postgresql://district:s3cret@127.0.0.1:{free_port()}/posko?connect_timeout=5"
    with pytest.raises(StorageError) as refused:
        open_storage(address)
    if "not supported yet" in str(refused.value):
        pytest.skip("the PostgreSQL backend is not there yet")
    assert isinstance(refused.value, PoskoError)
    assert not isinstance(refused.value, UnsupportedStorage)  # a failure, not a refusal
    message = str(refused.value)
    assert "s3cret" not in message and "\n" not in message


def test_district_storage_refuses_an_unknown_scheme() -> None:
    with pytest.raises(UnsupportedStorage, match="unknown kind of storage"):
        open_storage("mysql://district@db.example/posko")


def test_district_storage_read_only_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no district database at"):
        open_storage(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_district_storage_reports_sqlite_failures_as_storage_errors(tmp_path: Path) -> None:
    open_storage(tmp_path / "district.db").close()
    events = day_events(random.Random(1), date(2026, 9, 1), ZoneInfo("Asia/Jakarta"), 1, 5, None)
    with (
        open_storage(tmp_path / "district.db", read_only=True) as storage,
        pytest.raises(StorageError, match="readonly"),
    ):
        storage.store_batch(Batch.of("bench", events))


def test_district_storage_several_receivers_may_open_one_new_database_at_once(
    tmp_path: Path, district_db: str
) -> None:
    """Receivers started together on a new database (`--share`) all open it: SQLite answers
    the switch to WAL with "locked" at once, not after its busy timeout; PostgreSQL's
    migrations run once, not once per receiver."""
    failures = []
    fresh = [district_db] + [str(tmp_path / f"district-{n}.db") for n in range(9)]
    for db in fresh if "://" not in district_db else fresh[:1]:
        barrier = threading.Barrier(6)

        def open_it(db: str = db, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                open_storage(db).close()
            except StorageError as e:
                failures.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    with open_storage(district_db) as storage:  # each schema step applied once
        steps = storage.conn.execute("SELECT version FROM schema_history").fetchall()  # type: ignore[attr-defined]
        assert [v for (v,) in steps] == [step.version for step in migrations.STEPS]


def test_district_storage_a_failed_write_leaves_the_storage_usable(district_db: str) -> None:
    """A statement failing mid-transaction (here the second row of a many-row insert, which
    PostgreSQL sends pipelined) rolls back the whole transaction, and the next write works
    on the same storage: a receiver must not stay stuck on a connection left half-way."""
    events = day_events(random.Random(2), date(2026, 9, 1), ZoneInfo("Asia/Jakarta"), 1, 6, None)
    with open_storage(district_db) as storage:
        handle = storage  # the page's tables go through the same seam
        with pytest.raises(StorageError), handle.transaction() as tx:  # type: ignore[attr-defined]
            tx.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("k", "1"), ("k", "2")])
        assert storage.store_batch(Batch.of("bench", events)).contiguous == 6
        rows = handle.conn.execute("SELECT value FROM meta WHERE key = ?", ("k",)).fetchall()  # type: ignore[attr-defined]
        assert rows == []


def test_district_storage_a_late_first_batch_moves_contiguous_past_thousands_stored(
    district_db: str,
) -> None:
    """A post whose first batch arrives last: its other 2,500 events wait beyond a gap,
    then the first one closes it and the contiguous seq reaches the end (read back a chunk
    at a time, not stopping at a chunk's edge)."""
    zone = ZoneInfo("Asia/Jakarta")
    events = day_events(random.Random(3), date(2026, 9, 1), zone, 1, 2510, None)
    with open_storage(district_db) as storage:
        for at in range(10, 2510, 500):
            stored = storage.store_batch(Batch.of("bench", events[at : at + 500]))
            assert stored.contiguous == 0  # seqs 1-10 are still missing
        assert storage.store_batch(Batch.of("bench", events[:10])).contiguous == 2510
        assert storage.gaps("bench") == []
