"""The district's embedded storage (SQLite), one implementation of `district.storage.Storage`.

A batch is stored in one transaction with `INSERT OR IGNORE` on the (post, seq) key, so a
batch sent twice changes nothing; the highest contiguous seq of each post moves in the
same transaction and is what the receiver acknowledges once the commit is done.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from district import daily, migrations
from district.report import DEFAULT_ZONE
from district.storage import Purge, QuarantineLimits, Rejected, StorageError, Stored
from edge.events import FIELDS, Event, utc_text
from sync.batch import Batch

log = logging.getLogger(__name__)

SCHEMA_VERSION = migrations.LATEST  # PRAGMA user_version, beside schema_history
COLUMNS = (*FIELDS, "received")
ERASING = ("note", "visitor")  # kinds whose arrival may call for an erasure (UU PDP)
ERASED = json.dumps({"purged": True})  # a visitor record's data once erased
# Events whose data names a person: a visitor's details, a referral's contact (a note).
PERSONAL = "(kind = 'visitor' OR (kind = 'note' AND data LIKE '%\"referral\"%'))"
_LOG = "INSERT INTO privacy_log (at, action, class, records, detail) VALUES (?, ?, ?, ?, ?)"
_COUNT_REFUSAL = (
    "INSERT INTO quarantine_totals VALUES (?, 1, ?, ?) ON CONFLICT (post) DO UPDATE SET "
    "payloads = payloads + 1, bytes = bytes + excluded.bytes, last = excluded.last"
)
_INSERT = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * 14)})"


def now_text() -> str:
    return utc_text(datetime.now(UTC))


@contextmanager
def storage_errors() -> Iterator[None]:
    """sqlite3's errors as the seam's `StorageError`, the only kind its callers catch."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"district database: {e}") from e


class SQLiteStorage:
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
        self._scrub_after = False  # an erasure in this transaction: scrub after its commit
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

    # -- writing -------------------------------------------------------------------

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        """Store a checked batch whole, idempotently; returns what is now contiguous."""
        return self.store_batches([(batch, alert)])[0]

    @storage_errors()
    def store_batches(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        """Store checked (batch, alert) pairs of any posts in ONE transaction (group
        commit), idempotently; what each batch's ack needs, once committed."""
        seen = now_text()
        by_post: dict[str, list[int]] = {}
        for i, (batch, _) in enumerate(batches):
            by_post.setdefault(batch.post, []).append(i)
        inserted = [0] * len(batches)
        held: dict[str, int] = {}
        with self._tx() as db:
            self._scrub_after = False
            fresh = {  # read under the write lock: exactly what the insert below adds
                post: daily.unseen(db, *(batches[i][0] for i in group))
                for post, group in by_post.items()
            }
            rows: list[tuple[Any, ...]] = []
            for post, group in by_post.items():
                counts = _fresh_rows([batches[i][0] for i in group], fresh[post], seen, rows)
                for i, n in zip(group, counts, strict=True):
                    inserted[i] = n
            db.executemany(_INSERT, rows)  # one for the whole group, of the new events only
            for post, group in by_post.items():
                mine = [batches[i][0] for i in group]
                daily.record(db, self.zone, post, fresh[post])  # duplicates count once
                held[post] = self._settle(
                    post, mine, [batches[i][1] for i in group], [inserted[i] for i in group], seen
                )
        if self._scrub_after:
            self._scrub()
        return [Stored(inserted[i], held[b.post]) for i, (b, _) in enumerate(batches)]

    def _settle(
        self, post: str, mine: list[Batch], alerts: list[bool], inserted: list[int], seen: str
    ) -> int:
        """Record a post's lost ranges, move its contiguous seq, apply its erasures and
        count its batches (in the group's transaction); its contiguous seq."""
        db = self.conn
        db.executemany(
            "INSERT OR IGNORE INTO lost VALUES (?, ?, ?, ?)",
            [(post, a, b, seen) for batch in mine for a, b in batch.lost()],
        )
        db.execute("INSERT OR IGNORE INTO posts (post) VALUES (?)", (post,))
        (held,) = db.execute("SELECT contiguous FROM posts WHERE post = ?", (post,)).fetchone()
        contiguous = self._advance(post, held)
        if any(e["kind"] in ERASING for batch in mine for e in batch.events):
            self._apply_erasures(post, min(batch.first for batch in mine))
        last_alert = [b.last for b, alert in zip(mine, alerts, strict=True) if alert]
        db.execute(
            "UPDATE posts SET contiguous = ?, max_seq = max(max_seq, ?), "
            "events = events + ?, batches = batches + ?, duplicates = duplicates + ?, "
            "alerts = alerts + ?, last_alert = coalesce(?, last_alert), "
            "last_seen = ? WHERE post = ?",
            (
                contiguous,
                max(b.last for b in mine),
                sum(inserted),
                alerts.count(False),
                sum(len(b.events) for b in mine) - sum(inserted),
                len(last_alert),
                last_alert[-1] if last_alert else None,
                seen,
                post,
            ),
        )
        return contiguous

    def _advance(self, post: str, held: int) -> int:
        lost = deque(
            self.conn.execute(
                "SELECT first, last FROM lost WHERE post = ? AND last > ? ORDER BY first",
                (post, held),
            ).fetchall()
        )

        def past_lost(seq: int) -> int:
            while lost and lost[0][0] <= seq + 1:
                seq = max(seq, lost.popleft()[1])
            return seq

        held = past_lost(held)
        for (seq,) in self.conn.execute(
            "SELECT seq FROM events WHERE post = ? AND seq > ? ORDER BY seq", (post, held)
        ):
            if seq != held + 1:
                break
            held = past_lost(seq)
        return held

    def _apply_erasures(self, post: str, first: int) -> None:
        """Redact the post's visitor records named by erasure notes (UU PDP), in the transaction.

        Batches can arrive out of order, so the notes are read back from the first seq
        stored now on: a note stored earlier also covers records that arrive only now.
        """
        targets: set[int] = set()
        for (data,) in self.conn.execute(
            "SELECT data FROM events WHERE post = ? AND seq >= ? AND kind = 'note' "
            "AND data LIKE '%\"erasure\"%'",
            (post, first),
        ):
            erasure = json.loads(data).get("erasure")
            seqs = erasure.get("seqs") if isinstance(erasure, dict) else None
            if isinstance(seqs, list):
                targets.update(s for s in seqs if isinstance(s, int) and not isinstance(s, bool))
        if not targets:
            return
        erased = self.conn.executemany(
            f"UPDATE events SET data = ? WHERE post = ? AND seq = ? AND {PERSONAL} "
            "AND data IS NOT ?",
            [(ERASED, post, seq, ERASED) for seq in sorted(targets)],
        ).rowcount
        # A refused payload of this post may hold a copy of the erased details.
        dropped = self.conn.execute("DELETE FROM quarantine WHERE post = ?", (post,)).rowcount
        at = now_text()
        if erased:
            detail = f"post {post}, records {', '.join(map(str, sorted(targets)))}"
            self.conn.execute(_LOG, (at, "erasure", "visitor_details", erased, detail))
        if dropped:
            detail = f"post {post}, refused payloads that may hold a copy"
            self.conn.execute(_LOG, (at, "erasure", "quarantine", dropped, detail))
        self._scrub_after |= bool(erased or dropped)  # any post of the group

    @storage_errors()
    def quarantine(self, rejected: Sequence[Rejected], limits: QuarantineLimits) -> None:
        if not rejected:
            return
        seen = now_text()
        with self._tx() as db:
            for r in rejected:
                db.execute(_COUNT_REFUSAL, (r.post or "", len(r.payload), seen))
                if not r.keep:
                    continue
                db.execute(
                    "INSERT INTO quarantine (received, topic, post, reason, size, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        seen,
                        r.topic[:300],
                        r.post,
                        r.reason[:500],
                        len(r.payload),
                        r.payload[: limits.payload_bytes],
                    ),
                )
            for post in {r.post for r in rejected if r.keep}:  # each post's newest rows only
                db.execute(
                    "DELETE FROM quarantine WHERE post IS ? AND id <= (SELECT id FROM "
                    "quarantine WHERE post IS ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (post, post, limits.rows),
                )
            db.execute(
                "DELETE FROM quarantine WHERE id <= "
                "(SELECT id FROM quarantine ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (limits.rows_total,),
            )

    @storage_errors()
    def purge(self, before: Purge) -> dict[str, int]:
        at = now_text()
        with self._tx() as db:
            removed = {
                "visitor_details": db.execute(
                    f"UPDATE events SET data = ? WHERE {PERSONAL} AND time < ? "
                    "AND data IS NOT NULL AND data IS NOT ?",
                    (ERASED, before.visitor_details, ERASED),
                ).rowcount,
                "nik": self._purge_niks(before.nik),
                "events": db.execute(
                    "DELETE FROM events WHERE time < ?", (before.events,)
                ).rowcount,
                "quarantine": db.execute(
                    "DELETE FROM quarantine WHERE received < ?", (before.quarantine,)
                ).rowcount,
            }
            for name, count in removed.items():
                if count:
                    cutoff = getattr(before, name)
                    db.execute(_LOG, (at, "purge", name, count, f"older than {cutoff}"))
        if any(removed.values()):
            self._scrub()
        return removed

    def _purge_niks(self, before: str) -> int:
        rows = self.conn.execute(
            "SELECT post, seq, data FROM events WHERE kind = 'visitor' AND time < ? "
            "AND data LIKE '%\"nik\"%'",
            (before,),
        ).fetchall()
        changed = []
        for post, seq, data in rows:
            details = json.loads(data)
            if isinstance(details, dict) and details.pop("nik", None) is not None:
                changed.append((json.dumps(details, ensure_ascii=False), post, seq))
        self.conn.executemany("UPDATE events SET data = ? WHERE post = ? AND seq = ?", changed)
        return len(changed)

    def _scrub(self) -> None:
        """Leave no copy of removed data in the write-ahead log: its frames go back into the
        main file (where `secure_delete` zeroes what was freed) and the log is emptied."""
        busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:  # a reader held it back: the next write's checkpoint finishes the job
            log.warning("the write-ahead log could not be emptied yet (a reader is busy)")

    @storage_errors()
    def privacy_log(self, limit: int = 50) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT at, action, class, records, detail FROM privacy_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    @storage_errors()
    def record_status(self, post: str, status: dict[str, Any]) -> None:
        # Seen at the status's own time (never after now): a retained status replayed to a
        # restarted receiver must not make an old post look freshly seen.
        now = now_text()
        seen = min(status.get("time") or now, now)
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO posts (post) VALUES (?)", (post,))
            db.execute(
                "UPDATE posts SET state = ?, status = ?, "
                "last_seen = max(coalesce(last_seen, ''), ?) WHERE post = ?",
                (status["state"], json.dumps(status, ensure_ascii=False), seen, post),
            )

    # -- reading -------------------------------------------------------------------

    @storage_errors()
    def contiguous(self, post: str) -> int:
        row = self.conn.execute("SELECT contiguous FROM posts WHERE post = ?", (post,)).fetchone()
        return row[0] if row else 0

    @storage_errors()
    def count(self, post: str | None = None) -> int:
        if post is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        return int(
            self.conn.execute("SELECT COUNT(*) FROM events WHERE post = ?", (post,)).fetchone()[0]
        )

    @storage_errors()
    def seqs(self, post: str) -> list[int]:
        return [
            s
            for (s,) in self.conn.execute(
                "SELECT seq FROM events WHERE post = ? ORDER BY seq", (post,)
            )
        ]

    @storage_errors()
    def lost(self, post: str) -> list[tuple[int, int]]:
        return [
            (a, b)
            for a, b in self.conn.execute(
                "SELECT first, last FROM lost WHERE post = ? ORDER BY first", (post,)
            )
        ]

    @storage_errors()
    def gaps(self, post: str, limit: int = 100) -> list[tuple[int, int]]:
        """Seq ranges the district is still waiting for (neither stored nor declared lost)."""
        row = self.conn.execute(
            "SELECT contiguous, max_seq FROM posts WHERE post = ?", (post,)
        ).fetchone()
        if row is None:
            return []
        held, top = row
        present = self.conn.execute(
            "SELECT first, last FROM lost WHERE post = ? AND last > ? UNION ALL "
            "SELECT seq, seq FROM events WHERE post = ? AND seq > ? ORDER BY 1",
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

    @storage_errors()
    def posts(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute("SELECT * FROM posts ORDER BY post")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor]
        for row in rows:
            row["status"] = json.loads(row["status"]) if row["status"] else {}
        return rows

    @storage_errors()
    def quarantined(self, post: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, received, topic, post, reason, size FROM quarantine"
        cursor = (
            self.conn.execute(query + " WHERE post = ? ORDER BY id", (post,))
            if post
            else self.conn.execute(query + " ORDER BY id")
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor]

    @storage_errors()
    def quarantine_counts(self) -> dict[str | None, int]:
        rows = self.conn.execute("SELECT post, payloads FROM quarantine_totals")
        return {post or None: count for post, count in rows}

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
                yield _event(row)

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


def _fresh_rows(
    batches: list[Batch], fresh: list[Event], received: str, rows: list[tuple[Any, ...]]
) -> list[int]:
    """Add to `rows` those of `fresh` (what `daily.unseen` gave for these batches: a
    subsequence of their events, in order); how many each batch brings."""
    counts, at = [], 0
    for batch in batches:
        before = at
        decoded = batch.rows if batch.rows is not None else [None] * len(batch.events)
        for event, row in zip(batch.events, decoded, strict=True):
            if at < len(fresh) and fresh[at] is event:
                at += 1
                rows.append(_row(event, received) if row is None else (*row, received))
        counts.append(at - before)
    return counts


def _row(event: Event, received: str) -> tuple[Any, ...]:
    data = event.get("data")
    return (
        event["post"],
        event["seq"],
        event["time"],
        event["clock"],
        event["kind"],
        event.get("who"),
        event.get("temp_c"),
        event.get("temp_raw_c"),
        event.get("screening"),
        event.get("fault"),
        event.get("ref"),
        1 if event.get("photo") else None,
        None if data is None else json.dumps(data, ensure_ascii=False),
        received,
    )


def _event(row: tuple[Any, ...]) -> Event:
    event = dict(zip(FIELDS[:5], row[:5], strict=True))
    for name, value in zip(FIELDS[5:], row[5:], strict=True):
        if value is not None:
            event[name] = (
                True if name == "photo" else json.loads(value) if (name == "data") else value
            )
    return cast(Event, event)  # a row stored by _row from a checked batch
