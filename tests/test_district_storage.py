"""The district's storage seam: `open_storage` picks the backend from the `--db` value, and
a backend's failures reach its callers as the seam's own `StorageError`."""

from __future__ import annotations

import random
import threading
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.store import day_events
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


def test_district_storage_refuses_postgresql_without_echoing_the_address() -> None:
    with pytest.raises(UnsupportedStorage) as refused:
        open_storage("postgresql://district:s3cret@db.example/posko")
    assert isinstance(refused.value, PoskoError)
    message = str(refused.value)
    assert "PostgreSQL" in message and "not supported yet" in message
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


def test_district_storage_several_receivers_may_open_one_new_file_at_once(
    tmp_path: Path,
) -> None:
    """Receivers started together on a new database (`--share`) all open it: SQLite answers
    the switch to WAL with "locked" at once, not after its busy timeout."""
    failures = []
    for trial in range(10):
        path = tmp_path / f"district-{trial}.db"
        barrier = threading.Barrier(6)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                SQLiteStorage(path).close()
            except StorageError as e:
                failures.append(str(e))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
