"""The district's storage on PostgreSQL (psycopg 3), for a district that outgrows one
machine: several receivers in one `$share` group write one database. The guarantees are
SQLite's (`district.sqlite`): (post, seq) is the key and a duplicate changes nothing, a
post's contiguous seq moves in the transaction that stores its events, an ack goes out only
after the commit. Receivers writing one post at once queue on that post's row lock.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pg_errors

from district import daily, daily_group, migrations
from district.report import DEFAULT_ZONE
from district.sqlite import COLUMNS, ERASED, ERASING, PERSONAL, _event, _row, now_text
from district.storage import Purge, QuarantineLimits, Rejected, StorageError, Stored
from district.storage import shown as redacted
from edge.events import FIELDS, Event
from sync.batch import Batch

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
RETRIES = 3  # a group that lost a deadlock to another receiver is stored again
_MIGRATION_LOCK = 0x706F736B6F  # "posko": one migrating receiver at a time
_PERSONAL = PERSONAL.replace("%", "%%")  # inside a query with parameters
_LOG = "INSERT INTO privacy_log (at, action, class, records, detail) VALUES (%s, %s, %s, %s, %s)"
_COUNT_REFUSAL = (
    "INSERT INTO quarantine_totals VALUES (%s, 1, %s, %s) ON CONFLICT (post) DO UPDATE SET "
    "payloads = quarantine_totals.payloads + 1, "
    "bytes = quarantine_totals.bytes + excluded.bytes, last = excluded.last"
)
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


class PostgresStorage:
    """One connection to the district's PostgreSQL database, shared between threads (one
    statement or transaction at a time); it reconnects at the next use after the server
    went away, and until then every call raises `StorageError` (nothing acked)."""

    def __init__(self, url: str, *, read_only: bool = False, zone: str = DEFAULT_ZONE) -> None:
        self.url = url
        self.zone = ZoneInfo(zone)
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = False
        self._pg: psycopg.Connection[Any] | None = None
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
            yield self._pg

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction for the page's own tables (`SQLHandle`)."""
        with self.using() as pg, pg.transaction():
            yield self.conn

    def _check_made(self, pg: psycopg.Connection[Any]) -> None:
        (made,) = pg.execute("SELECT to_regclass('schema_history') IS NOT NULL").fetchone() or (
            False,
        )
        if not made:
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

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        return self.store_batches([(batch, alert)])[0]

    def store_batches(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        """Store checked (batch, alert) pairs of any posts in ONE transaction; a group that
        another receiver's transaction deadlocked is tried again."""
        for attempt in range(RETRIES):
            try:
                return self._store_group(batches)
            except StorageError as e:
                retry = isinstance(
                    e.__cause__, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
                )
                if not retry or attempt == RETRIES - 1:
                    raise
                log.info("a group met another receiver's (%s); storing it again", e)
        raise AssertionError("unreachable")

    def _store_group(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        seen = now_text()
        by_post: dict[str, list[int]] = defaultdict(list)
        for i, (batch, _) in enumerate(batches):
            by_post[batch.post].append(i)
        posts = sorted(by_post)
        erasing = False
        with self.using() as pg, pg.transaction():
            pg.execute(
                "INSERT INTO posts (post) SELECT unnest(%s::text[]) ORDER BY 1 "
                "ON CONFLICT DO NOTHING",
                (posts,),
            )
            # Each post's row locked, in one order: a receiver storing the same post waits
            # here, and sees this group's events once it may go on.
            state = {
                post: (held, top)
                for post, held, top in pg.execute(
                    "SELECT post, contiguous, max_seq FROM posts WHERE post = ANY(%s) "
                    "ORDER BY post FOR UPDATE",
                    (posts,),
                )
            }
            fresh = self._unseen(pg, batches)
            inserted = [0] * len(batches)
            rows: list[tuple[Any, ...]] = []
            for i, (batch, _) in enumerate(batches):
                mine = fresh[batch.post].get(i, [])
                inserted[i] = len(mine)
                rows.extend(_row(e, seen) for e in mine)
            if rows:
                pg.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])
            lost = [(b.post, a, z, seen) for b, _ in batches for a, z in b.lost()]
            if lost:
                pg.cursor().executemany(
                    "INSERT INTO lost VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", lost
                )
            new = {
                post: [e for i in by_post[post] for e in fresh[post].get(i, [])] for post in posts
            }
            daily_group.record_many(self.conn, self.zone, new)  # duplicates count once
            lost_after = self._lost_beyond(pg, state)
            held = {}
            for post in posts:
                held[post] = self._advance(pg, post, *state[post], new[post], lost_after[post])
            erasable = {
                post: min(batches[i][0].first for i in by_post[post])
                for post in posts
                if any(e["kind"] in ERASING for i in by_post[post] for e in batches[i][0].events)
            }
            for post, seqs in self._erasures(pg, erasable).items():
                erasing |= self._apply_erasures(pg, post, seqs)
            pg.cursor().executemany(
                "UPDATE posts SET contiguous = %s, max_seq = GREATEST(max_seq, %s), "
                "events = events + %s, batches = batches + %s, duplicates = duplicates + %s, "
                "alerts = alerts + %s, last_alert = coalesce(%s, last_alert), last_seen = %s "
                "WHERE post = %s",
                [self._counts(post, held[post], by_post[post], batches, inserted, seen)
                 for post in posts],
            )  # fmt: skip
        if erasing:
            self._vacuum()
        return [Stored(inserted[i], held[b.post]) for i, (b, _) in enumerate(batches)]

    @staticmethod
    def _counts(
        post: str,
        held: int,
        group: list[int],
        batches: Sequence[tuple[Batch, bool]],
        inserted: list[int],
        seen: str,
    ) -> tuple[Any, ...]:
        alerts = [batches[i][0].last for i in group if batches[i][1]]
        new = sum(inserted[i] for i in group)
        return (
            held,
            max(batches[i][0].last for i in group),
            new,
            len(group) - len(alerts),
            sum(len(batches[i][0].events) for i in group) - new,
            len(alerts),
            alerts[-1] if alerts else None,
            seen,
            post,
        )

    @staticmethod
    def _unseen(
        pg: psycopg.Connection[Any], batches: Sequence[tuple[Batch, bool]]
    ) -> dict[str, dict[int, list[Event]]]:
        """Per post, per batch index: its events not stored yet, each seq once (the first
        batch of the group holding it gets it), in one query for the whole group."""
        keys = {(b.post, e["seq"]) for b, _ in batches for e in b.events}
        stored = set()
        if keys:
            posts, seqs = zip(*keys, strict=True)
            stored = {
                (post, seq)
                for post, seq in pg.execute(
                    "SELECT e.post, e.seq FROM events e JOIN unnest(%s::text[], %s::bigint[]) "
                    "AS k(post, seq) ON e.post = k.post AND e.seq = k.seq",
                    (list(posts), list(seqs)),
                )
            }
        found: dict[str, dict[int, list[Event]]] = defaultdict(dict)
        for i, (batch, _) in enumerate(batches):
            mine = found[batch.post].setdefault(i, [])
            for event in batch.events:
                key = (batch.post, event["seq"])
                if key not in stored:
                    stored.add(key)
                    mine.append(event)
        return found

    @staticmethod
    def _lost_beyond(
        pg: psycopg.Connection[Any], state: dict[str, tuple[int, int]]
    ) -> dict[str, list[tuple[int, int]]]:
        """Each post's lost ranges beyond its contiguous seq, in order, in one query."""
        found: dict[str, list[tuple[int, int]]] = {post: [] for post in state}
        for post, first, last in pg.execute(
            "SELECT l.post, l.first, l.last FROM lost l JOIN unnest(%s::text[], %s::bigint[]) "
            "AS k(post, held) ON l.post = k.post AND l.last > k.held ORDER BY l.post, l.first",
            (list(state), [held for held, _ in state.values()]),
        ):
            found[post].append((first, last))
        return found

    @staticmethod
    def _advance(
        pg: psycopg.Connection[Any],
        post: str,
        held: int,
        top: int,
        new: list[Event],
        lost: list[tuple[int, int]],
    ) -> int:
        """The post's contiguous seq after this group: past what it held, its new events
        and its lost ranges (events read back only when some lay beyond it already)."""
        if top > held:  # out of order before: what lies beyond is in the database
            beyond = [
                s
                for (s,) in pg.execute(
                    "SELECT seq FROM events WHERE post = %s AND seq > %s ORDER BY seq",
                    (post, held),
                )
            ]
        else:  # in order so far: what lies beyond is this group's
            beyond = sorted(e["seq"] for e in new if e["seq"] > held)
        ranges = iter(lost)
        pending = next(ranges, None)

        def past_lost(seq: int) -> int:
            nonlocal pending
            while pending is not None and pending[0] <= seq + 1:
                seq = max(seq, pending[1])
                pending = next(ranges, None)
            return seq

        held = past_lost(held)
        for seq in beyond:
            if seq != held + 1:
                break
            held = past_lost(seq)
        return held

    @staticmethod
    def _erasures(pg: psycopg.Connection[Any], first: dict[str, int]) -> dict[str, set[int]]:
        """The records each post's erasure notes name, from its first seq stored now on
        (a note stored earlier also covers records that arrive only now), in one query."""
        targets: dict[str, set[int]] = defaultdict(set)
        if not first:
            return targets
        for post, data in pg.execute(
            "SELECT e.post, e.data FROM events e JOIN unnest(%s::text[], %s::bigint[]) "
            "AS k(post, first) ON e.post = k.post AND e.seq >= k.first "
            "WHERE e.kind = 'note' AND e.data LIKE '%%\"erasure\"%%'",
            (list(first), list(first.values())),
        ):
            erasure = json.loads(data).get("erasure")
            seqs = erasure.get("seqs") if isinstance(erasure, dict) else None
            if isinstance(seqs, list):
                targets[post].update(
                    s for s in seqs if isinstance(s, int) and not isinstance(s, bool)
                )
        return targets

    @staticmethod
    def _apply_erasures(pg: psycopg.Connection[Any], post: str, targets: set[int]) -> bool:
        """Redact the visitor records erasure notes name (UU PDP), as SQLite's does."""
        if not targets:
            return False
        erased = pg.execute(
            f"UPDATE events SET data = %s WHERE post = %s AND seq = ANY(%s) AND {_PERSONAL} "
            "AND data IS DISTINCT FROM %s",
            (ERASED, post, sorted(targets), ERASED),
        ).rowcount
        dropped = pg.execute("DELETE FROM quarantine WHERE post = %s", (post,)).rowcount
        at = now_text()
        if erased:
            detail = f"post {post}, records {', '.join(map(str, sorted(targets)))}"
            pg.execute(_LOG, (at, "erasure", "visitor_details", erased, detail))
        if dropped:
            detail = f"post {post}, refused payloads that may hold a copy"
            pg.execute(_LOG, (at, "erasure", "quarantine", dropped, detail))
        return bool(erased or dropped)

    def _vacuum(self) -> None:
        """Reclaim the old row versions an erasure or purge left in the tables' pages
        (docs/privacy.md: WAL archives and backups are the operator's to rotate)."""
        try:
            with self.using() as pg:
                pg.execute("VACUUM events, quarantine")
        except StorageError as e:
            log.warning("could not vacuum after removing personal data: %s", e)

    def quarantine(self, rejected: Sequence[Rejected], limits: QuarantineLimits) -> None:
        if not rejected:
            return
        seen = now_text()
        with self.using() as pg, pg.transaction():
            for r in rejected:
                pg.execute(_COUNT_REFUSAL, (r.post or "", len(r.payload), seen))
                if not r.keep:
                    continue
                pg.execute(
                    "INSERT INTO quarantine (received, topic, post, reason, size, payload) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (seen, r.topic[:300], r.post, r.reason[:500], len(r.payload),
                     r.payload[: limits.payload_bytes]),
                )  # fmt: skip
            for post in {r.post for r in rejected if r.keep}:  # each post's newest rows only
                pg.execute(
                    "DELETE FROM quarantine WHERE post IS NOT DISTINCT FROM %s AND id <= "
                    "(SELECT id FROM quarantine WHERE post IS NOT DISTINCT FROM %s "
                    "ORDER BY id DESC LIMIT 1 OFFSET %s)",
                    (post, post, limits.rows),
                )
            pg.execute(
                "DELETE FROM quarantine WHERE id <= "
                "(SELECT id FROM quarantine ORDER BY id DESC LIMIT 1 OFFSET %s)",
                (limits.rows_total,),
            )

    def purge(self, before: Purge) -> dict[str, int]:
        at = now_text()
        with self.using() as pg, pg.transaction():
            removed = {
                "visitor_details": pg.execute(
                    f"UPDATE events SET data = %s WHERE {_PERSONAL} "
                    "AND time < %s AND data IS NOT NULL AND data IS DISTINCT FROM %s",
                    (ERASED, before.visitor_details, ERASED),
                ).rowcount,
                "nik": self._purge_niks(pg, before.nik),
                "events": pg.execute(
                    "DELETE FROM events WHERE time < %s", (before.events,)
                ).rowcount,
                "quarantine": pg.execute(
                    "DELETE FROM quarantine WHERE received < %s", (before.quarantine,)
                ).rowcount,
            }
            for name, count in removed.items():
                if count:
                    cutoff = getattr(before, name)
                    pg.execute(_LOG, (at, "purge", name, count, f"older than {cutoff}"))
        if any(removed.values()):
            self._vacuum()
        return removed

    @staticmethod
    def _purge_niks(pg: psycopg.Connection[Any], before: str) -> int:
        rows = pg.execute(
            "SELECT post, seq, data FROM events WHERE kind = 'visitor' AND time < %s "
            "AND data LIKE '%%\"nik\"%%'",
            (before,),
        ).fetchall()
        changed = []
        for post, seq, data in rows:
            details = json.loads(data)
            if isinstance(details, dict) and details.pop("nik", None) is not None:
                changed.append((json.dumps(details, ensure_ascii=False), post, seq))
        pg.cursor().executemany("UPDATE events SET data = %s WHERE post = %s AND seq = %s", changed)
        return len(changed)

    def privacy_log(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT at, action, class, records, detail FROM privacy_log ORDER BY id DESC LIMIT %s",
            (limit,),
        )

    def record_status(self, post: str, status: dict[str, Any]) -> None:
        # Seen at the status's own time (never after now), as SQLite's.
        now = now_text()
        seen = min(status.get("time") or now, now)
        with self.using() as pg, pg.transaction():
            pg.execute(
                "INSERT INTO posts (post, state, status, last_seen) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (post) DO UPDATE SET state = excluded.state, "
                "status = excluded.status, "
                "last_seen = GREATEST(coalesce(posts.last_seen, ''), excluded.last_seen)",
                (post, status["state"], json.dumps(status, ensure_ascii=False), seen),
            )

    # -- reading -------------------------------------------------------------------

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.using() as pg:
            return pg.execute(sql, params).fetchall()

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.using() as pg:
            cursor = pg.execute(sql, params)
            names = [d.name for d in cursor.description or ()]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def contiguous(self, post: str) -> int:
        rows = self._all("SELECT contiguous FROM posts WHERE post = %s", (post,))
        return int(rows[0][0]) if rows else 0

    def count(self, post: str | None = None) -> int:
        if post is None:
            return int(self._all("SELECT COUNT(*) FROM events")[0][0])
        return int(self._all("SELECT COUNT(*) FROM events WHERE post = %s", (post,))[0][0])

    def seqs(self, post: str) -> list[int]:
        return [s for (s,) in self._all("SELECT seq FROM events WHERE post = %s ORDER BY seq",
                                         (post,))]  # fmt: skip

    def lost(self, post: str) -> list[tuple[int, int]]:
        rows = self._all("SELECT first, last FROM lost WHERE post = %s ORDER BY first", (post,))
        return [(a, b) for a, b in rows]

    def gaps(self, post: str, limit: int = 100) -> list[tuple[int, int]]:
        """Seq ranges the district is still waiting for (neither stored nor declared lost)."""
        row = self._all("SELECT contiguous, max_seq FROM posts WHERE post = %s", (post,))
        if not row:
            return []
        held, top = row[0]
        present = self._all(
            "SELECT first, last FROM lost WHERE post = %s AND last > %s UNION ALL "
            "SELECT seq, seq FROM events WHERE post = %s AND seq > %s ORDER BY 1",
            (post, held, post, held),
        )
        found: list[tuple[int, int]] = []
        for first, last in present:
            if first > held + 1:
                found.append((held + 1, first - 1))
                if len(found) >= limit:
                    break
            held = max(held, last)
        if held < top and len(found) < limit:
            found.append((held + 1, top))
        return found

    def posts(self) -> list[dict[str, Any]]:
        rows = self._dicts('SELECT * FROM posts ORDER BY post COLLATE "C"')
        for row in rows:
            row["status"] = json.loads(row["status"]) if row["status"] else {}
        return rows

    def quarantined(self, post: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, received, topic, post, reason, size FROM quarantine"
        if post:
            return self._dicts(query + " WHERE post = %s ORDER BY id", (post,))
        return self._dicts(query + " ORDER BY id")

    def quarantine_counts(self) -> dict[str | None, int]:
        rows = self._all("SELECT post, payloads FROM quarantine_totals")
        return {post or None: int(count) for post, count in rows}

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
                yield _event(row)

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
