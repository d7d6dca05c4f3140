"""The district's storage on PostgreSQL (psycopg 3), for a district that outgrows one
machine: several receivers in one `$share` group write one database. The guarantees are
SQLite's (`district.sqlite`): (post, seq) is the key and a duplicate changes nothing, a
post's contiguous seq moves in the transaction that stores its events, an ack goes out only
after the commit. Receivers writing one post at once queue on that post's row lock.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pg_errors

from district import daily, migrations
from district.group_commit import COLUMNS, event_of, now_text
from district.report import DEFAULT_ZONE
from district.sqlstore import SQLStorage
from district.storage import StorageError, Stored
from district.storage import shown as redacted
from edge.events import FIELDS, Event
from sync.batch import Batch

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
RETRIES = 3  # a group that lost a deadlock to another receiver is stored again
_MIGRATION_LOCK = 0x706F736B6F  # "posko": one migrating receiver at a time
_TYPES = ("text", "bigint", "text", "text", "text", "text", "float8", "float8", "text", "text",
          "bigint", "int", "text", "text")  # fmt: skip
_INSERT = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _TYPES)
    + ") ON CONFLICT DO NOTHING"
)


@lru_cache(maxsize=512)
def dialect(sql: str, with_params: bool) -> str:
    """SQLite's SQL as the shared modules write it, in PostgreSQL's: `?` marks become `%s`
    (and a literal `%` doubles), `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`, and
    SQLite's index hints go."""
    sql = re.sub(r"\s+INDEXED BY \w+", "", sql)
    if re.match(r"\s*INSERT OR IGNORE INTO", sql, re.IGNORECASE):
        sql = re.sub(r"INSERT OR IGNORE INTO", "INSERT INTO", sql, count=1, flags=re.IGNORECASE)
        sql += " ON CONFLICT DO NOTHING"
    if not with_params:
        return sql
    parts = re.split(r"('(?:[^']|'')*')", sql.replace("%", "%%"))
    return "".join(p if p.startswith("'") else p.replace("?", "%s") for p in parts)


def _idle(pg: psycopg.Connection[Any]) -> bool:
    """Whether the connection is ready for the next transaction, after an error."""
    info = pg.info
    return (
        info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        and info.pipeline_status == psycopg.pq.PipelineStatus.OFF
    )


@contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """psycopg's errors as the seam's `StorageError` (naming the server, never a password)."""
    try:
        yield
    except psycopg.Error as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StorageError(f"district database {redacted(url)}: {text}") from e


class Connection:
    """The connection the shared modules see (`SQLHandle.conn`, and inside `transaction()`):
    `execute`/`executemany` in SQLite's dialect, results fetched at once, errors the seam's."""

    def __init__(self, storage: PostgresStorage) -> None:
        self._storage = storage

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        with self._storage.using() as pg:
            return pg.execute(dialect(sql, params is not None), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        with self._storage.using() as pg:
            cursor = pg.cursor()
            cursor.executemany(dialect(sql, True), list(rows))
            return cursor


class PostgresStorage(SQLStorage):
    """One connection to the district's PostgreSQL database, shared between threads (one
    statement or transaction at a time); it reconnects at the next use after the server
    went away, and until then every call raises `StorageError` (nothing acked)."""

    ROW_LOCKS = ' ORDER BY post COLLATE "C" FOR UPDATE'  # a receiver storing one post waits

    def __init__(self, url: str, *, read_only: bool = False, zone: str = DEFAULT_ZONE) -> None:
        self.url = url
        self.zone = ZoneInfo(zone)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = False
        self._pg: psycopg.Connection[Any] | None = None
        self._depth = 0  # using() inside using() (the adapter inside a transaction)
        self.conn = Connection(self)
        with self.using() as pg:
            if read_only:
                self._check_made(pg)
            else:
                self._migrate(pg)
        if not read_only:
            daily.catch_up(self, self.zone)  # an older database's events, counted once

    # -- the connection ------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        options = "-c default_transaction_read_only=on" if self.read_only else ""
        pg = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="posko-district",
            options=options,
        )
        pg.execute("SET lock_timeout = '30s'")  # a stuck peer fails the group, not the post
        return pg

    @contextmanager
    def using(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection, reopened if the server went away since; errors the seam's."""
        with self._lock, storage_errors(self.url):
            if self._closed:
                raise StorageError("the district database is closed")
            if self._pg is None or self._pg.closed or self._pg.broken:
                if self._pg is not None:
                    log.warning("reconnecting to the district database %s", redacted(self.url))
                    self._pg.close()
                self._pg = None
                self._pg = self._connect()
            pg = self._pg
            self._depth += 1
            try:
                yield pg
            except BaseException:
                if self._depth == 1 and not _idle(pg):
                    pg.close()  # left mid-transaction or mid-pipeline: the next use reconnects
                raise
            finally:
                self._depth -= 1

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction for the page's own tables (`SQLHandle`)."""
        with self.using() as pg, pg.transaction():
            yield self.conn

    def _check_made(self, pg: psycopg.Connection[Any]) -> None:
        if self._version(pg) == 0:  # a reader never makes the tables
            raise StorageError(f"no district database at {redacted(self.url)}")

    @staticmethod
    def _version(pg: psycopg.Connection[Any]) -> int:
        """The schema version the database records (0: a new one)."""
        row = pg.execute("SELECT to_regclass('schema_history') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return 0
        row = pg.execute("SELECT coalesce(max(version), 0) FROM schema_history").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self, pg: psycopg.Connection[Any]) -> None:
        """Apply the schema steps the database lacks, in one transaction, one receiver at a
        time (an advisory lock): the others then find them done."""
        if self._version(pg) == migrations.LATEST:
            return  # the usual case: one query, no lock
        with pg.transaction():
            pg.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            pg.execute(migrations.HISTORY)
            for step in migrations.pending(self._version(pg)):
                for statement in step.statements("postgres"):
                    pg.execute(statement)
                pg.execute(
                    "INSERT INTO schema_history VALUES (%s, %s, %s)",
                    (step.version, step.name, now_text()),
                )
                log.info("district database: schema step %d (%s)", step.version, step.name)

    # -- writing -------------------------------------------------------------------

    def store_batches(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        """Store checked (batch, alert) pairs of any posts in ONE transaction; a group that
        another receiver's transaction deadlocked is tried again."""
        for attempt in range(RETRIES):
            try:
                return super().store_batches(batches)
            except StorageError as e:
                retry = isinstance(
                    e.__cause__, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
                )
                if not retry or attempt == RETRIES - 1:
                    raise
                log.info("a group met another receiver's (%s); storing it again", e)
        raise AssertionError("unreachable")

    def _write(self) -> AbstractContextManager[Connection]:
        return self.transaction()

    def _errors(self) -> AbstractContextManager[None]:
        return storage_errors(self.url)

    def _insert_events(self, db: Connection, rows: list[tuple[Any, ...]]) -> None:
        if rows:  # one statement of arrays, whatever the number of rows
            with self.using() as pg:
                pg.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])

    def _after_removal(self) -> None:
        """Reclaim the old row versions an erasure or purge left in the tables' pages
        (docs/privacy.md: WAL archives and backups are the operator's to rotate)."""
        try:
            with self.using() as pg:
                pg.execute("VACUUM events, quarantine")
        except StorageError as e:
            log.warning("could not vacuum after removing personal data: %s", e)

    def events(self, start: str = "", end: str = "~", post: str | None = None) -> Iterator[Event]:
        """Events whose UTC time text lies in [start, end), by post then seq: streamed
        through a connection of their own (an export may read millions)."""
        query = f"SELECT {', '.join(FIELDS)} FROM events WHERE time >= %s AND time < %s"
        args: tuple[Any, ...] = (start, end)
        if post is not None:
            query, args = query + " AND post = %s", (*args, post)
        with (
            storage_errors(self.url),
            psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as reader,
            reader.cursor(name="events") as cursor,
        ):
            cursor.itersize = 5000
            cursor.execute(query + ' ORDER BY post COLLATE "C", seq', args)
            for row in cursor:
                yield event_of(row)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._pg is not None:
                    self._pg.close()

    def __enter__(self) -> PostgresStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
