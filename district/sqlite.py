"""The district's embedded storage (SQLite), one implementation of `district.storage.Storage`:
one file, write-ahead log, one writer at a time (BEGIN IMMEDIATE locks the whole database,
so a group's posts need no row locks). What it shares with PostgreSQL is `district.sqlstore`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from district import daily, migrations
from district.group_commit import COLUMNS, event_of, now_text
from district.report import DEFAULT_ZONE
from district.sqlstore import SQLStorage
from district.storage import StorageError
from edge.events import FIELDS, Event

log = logging.getLogger(__name__)

SCHEMA_VERSION = migrations.LATEST  # PRAGMA user_version, beside schema_history
_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 14)})"


@contextmanager
def storage_errors() -> Iterator[None]:
    """sqlite3's errors as the seam's `StorageError`, the only kind its callers catch."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"district database: {e}") from e


class SQLiteStorage(SQLStorage):
    """One connection to the district database file; safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        busy_timeout: float = 30.0,
        zone: str = DEFAULT_ZONE,
    ) -> None:
        self.path = Path(path)
        self.zone = ZoneInfo(zone)  # of the days in the daily figures (district.daily)
        if read_only and not self.path.is_file():
            raise StorageError(f"no district database at {self.path}")
        self._lock = threading.RLock()
        self._closed = False
        try:
            self.conn = _connect(self.path, read_only, busy_timeout)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the district database {self.path}: {e}") from e
        if not read_only:
            try:
                daily.catch_up(self, self.zone)  # a database made before the table existed
            except BaseException:
                self.conn.close()
                raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on an error), for
        the district page's own tables (`district.storage.SQLHandle`)."""
        with storage_errors(), self._tx() as db:
            yield db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._tx()

    def _errors(self) -> AbstractContextManager[None]:
        return storage_errors()

    def _insert_events(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        db.executemany(_INSERT, rows)  # one prepared statement for the whole group

    def _after_removal(self) -> None:
        """Leave no copy of removed data in the write-ahead log: its frames go back into the
        main file (where `secure_delete` zeroes what was freed) and the log is emptied."""
        with storage_errors():
            busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:  # a reader held it back: the next write's checkpoint finishes the job
            log.warning("the write-ahead log could not be emptied yet (a reader is busy)")

    def events(
        self,
        start: str = "",
        end: str = "~",
        post: str | None = None,
    ) -> Iterator[Event]:
        """Events whose UTC time text lies in [start, end), by post then seq."""
        query = f"SELECT {', '.join(FIELDS)} FROM events WHERE time >= ? AND time < ?"
        args: tuple[Any, ...] = (start, end)
        if post is not None:
            query, args = query + " AND post = ?", (*args, post)
        with storage_errors():
            for row in self.conn.execute(query + " ORDER BY post, seq", args):
                yield event_of(row)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.conn.close()

    def __enter__(self) -> SQLiteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); a writer's has the schema."""
    if read_only:
        return sqlite3.connect(
            f"file:{path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout,
        )
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
    )
    try:
        _use_wal(conn, busy_timeout)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: a storm inserts all over the tree
        # Freed content is overwritten with zeros, whatever this SQLite's build default.
        conn.execute("PRAGMA secure_delete=ON")
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the schema steps this file lacks (`district.migrations`), each in one
    transaction; a receiver that started at the same moment waits and finds them done."""
    # fetchall: a statement left unfinished would hold a read lock into the writes below.
    ((found,),) = conn.execute("PRAGMA user_version").fetchall()
    if not migrations.pending(found):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        ((found,),) = conn.execute("PRAGMA user_version").fetchall()
        conn.execute(migrations.HISTORY)
        for step in migrations.pending(found):
            for statement in step.statements("sqlite"):
                conn.execute(statement)
            conn.execute(
                "INSERT OR REPLACE INTO schema_history VALUES (?, ?, ?)",
                (step.version, step.name, now_text()),
            )
            conn.execute(f"PRAGMA user_version={step.version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Switch to WAL. While another connection switches the same new file, SQLite answers
    "locked" at once instead of waiting (two receivers started together), so wait here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
