"""What the district's SQL backends share (`district.sqlite`, `district.postgres`): a group
of batches stored in one transaction in a fixed number of statements whatever the number of
posts, the quarantine, the retention purge, and every read. Written in SQLite's SQL, which
`district.postgres.Connection` turns into PostgreSQL's; a backend supplies its connection,
its write transaction, how it locks the group's posts and how it inserts rows fastest.

A batch sent twice changes nothing: (post, seq) is the key, and what a group inserts is
worked out under the lock of its posts, so it is exactly what the database lacked.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, cast
from zoneinfo import ZoneInfo

from district import daily_group
from district import group_commit as steps
from district.group_commit import Group
from district.storage import Purge, QuarantineLimits, Rejected, Stored
from sync.batch import Batch

log = logging.getLogger(__name__)

_COUNT_REFUSAL = (
    "INSERT INTO quarantine_totals VALUES (?, 1, ?, ?) ON CONFLICT (post) DO UPDATE SET "
    "payloads = quarantine_totals.payloads + 1, "
    "bytes = quarantine_totals.bytes + excluded.bytes, last = excluded.last"
)
_CHUNK = 150  # VALUES rows per statement (at most 750 variables: SQLite's old limit 999)


class SQLStorage:
    """The shared half of an SQL `Storage`; a subclass sets `conn` and `zone` and gives
    `_write()`, `_errors()`, `_lock_posts()`, `_insert_events()` and `_after_removal()`."""

    conn: Any
    zone: ZoneInfo
    ROW_LOCKS = ""  # what a backend whose writers lock rows adds to lock the group's posts

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _errors(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _insert_events(self, db: Any, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _after_removal(self) -> None:
        """Personal data was removed: leave no old copy the backend can reach."""

    # -- writing -------------------------------------------------------------------

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        """Store a checked batch whole, idempotently; returns what is now contiguous."""
        return self.store_batches([(batch, alert)])[0]

    def store_batches(self, batches: Group) -> list[Stored]:
        """Store checked (batch, alert) pairs of any posts in ONE transaction (group
        commit), idempotently; what each batch's ack needs, once committed."""
        seen = steps.now_text()
        by_post: dict[str, list[int]] = defaultdict(list)
        for i, (batch, _) in enumerate(batches):
            by_post[batch.post].append(i)
        posts = sorted(by_post)
        with self._errors(), self._write() as db:
            db.executemany("INSERT OR IGNORE INTO posts (post) VALUES (?)", [(p,) for p in posts])
            state = self._lock_posts(db, posts)
            fresh = steps.unseen(db, batches)
            rows: list[tuple[Any, ...]] = []
            for i, (batch, _) in enumerate(batches):
                rows.extend(steps.rows(batch, fresh[i], seen))
            self._insert_events(db, rows)
            gone = [(b.post, *r[:2], seen, r[2]) for b, _ in batches for r in steps.lost_of(b)]
            if gone:  # seldom: a post lost records
                db.executemany(
                    "INSERT OR IGNORE INTO lost (post, first, last, reported, reason) "
                    "VALUES (?, ?, ?, ?, ?)",
                    gone,
                )
            new = {post: [e for i in by_post[post] for e in fresh[i]] for post in posts}
            daily_group.record_many(db, self.zone, new)  # duplicates count once
            lost = steps.lost_beyond(db, {post: held for post, (held, _) in state.items()})
            held = {
                post: steps.advance(db, post, *state[post], new[post], lost[post]) for post in posts
            }
            erased = steps.apply_erasures(db, batches, by_post)
            db.executemany(
                "UPDATE posts SET contiguous = ?, max_seq = ?, events = events + ?, "
                "batches = batches + ?, duplicates = duplicates + ?, alerts = alerts + ?, "
                "last_alert = coalesce(?, last_alert), last_seen = ? WHERE post = ?",
                [
                    steps.counts(p, batches, by_post[p], fresh, held[p], state[p][1], seen)
                    for p in posts
                ],
            )
        if erased:
            self._after_removal()
        return [Stored(len(fresh[i]), held[b.post]) for i, (b, _) in enumerate(batches)]

    def _lock_posts(self, db: Any, posts: list[str]) -> dict[str, tuple[int, int]]:
        """Each post's (contiguous, max_seq), its row locked where the backend locks rows,
        in one order (two receivers' groups then never wait on each other in a circle)."""
        found: dict[str, tuple[int, int]] = {}
        for at in range(0, len(posts), _CHUNK):
            chunk = posts[at : at + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for post, held, top in db.execute(
                f"SELECT post, contiguous, max_seq FROM posts WHERE post IN ({marks})"
                + self.ROW_LOCKS,
                chunk,
            ):
                found[post] = (int(held), int(top))
        return found

    def quarantine(self, rejected: Sequence[Rejected], limits: QuarantineLimits) -> None:
        if not rejected:
            return
        seen = steps.now_text()
        with self._errors(), self._write() as db:
            for r in rejected:
                db.execute(_COUNT_REFUSAL, (r.post or "", len(r.payload), seen))
                if r.keep:
                    db.execute(
                        "INSERT INTO quarantine (received, topic, post, reason, size, payload) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (seen, r.topic[:300], r.post, r.reason[:500], len(r.payload),
                         r.payload[: limits.payload_bytes]),
                    )  # fmt: skip
            for post in {r.post for r in rejected if r.keep}:  # each post's newest rows only
                same = "post = ?" if post is not None else "post IS NULL"
                args = (post, post) if post is not None else ()
                db.execute(
                    f"DELETE FROM quarantine WHERE {same} AND id <= (SELECT id FROM quarantine "
                    f"WHERE {same} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (*args, limits.rows),
                )
            db.execute(
                "DELETE FROM quarantine WHERE id <= "
                "(SELECT id FROM quarantine ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (limits.rows_total,),
            )

    def purge(self, before: Purge) -> dict[str, int]:
        at = steps.now_text()
        with self._errors(), self._write() as db:
            removed = {
                "visitor_details": db.execute(
                    f"UPDATE events SET data = ? WHERE {steps.PERSONAL} AND time < ? "
                    "AND data IS NOT NULL AND data != ?",
                    (steps.ERASED, before.visitor_details, steps.ERASED),
                ).rowcount,
                "nik": _purge_niks(db, before.nik),
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
                    db.execute(steps.LOG_SQL, (at, "purge", name, count, f"older than {cutoff}"))
        if any(removed.values()):
            self._after_removal()
        return removed

    def record_status(self, post: str, status: dict[str, Any]) -> None:
        # Seen at the status's own time (never after now): a retained status replayed to a
        # restarted receiver must not make an old post look freshly seen.
        now = steps.now_text()
        seen = min(status.get("time") or now, now)
        with self._errors(), self._write() as db:
            db.execute("INSERT OR IGNORE INTO posts (post) VALUES (?)", (post,))
            db.execute(
                "UPDATE posts SET state = ?, status = ?, "
                "last_seen = max(coalesce(last_seen, ''), ?) WHERE post = ?",
                (status["state"], json.dumps(status, ensure_ascii=False), seen, post),
            )

    # -- reading -------------------------------------------------------------------

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._errors():
            return cast(list[Any], self.conn.execute(sql, params).fetchall())

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._errors():
            cursor = self.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def privacy_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest purges and erasures: `at`, `action`, `class`, `records`, `detail`."""
        return self._dicts(
            "SELECT at, action, class, records, detail FROM privacy_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def contiguous(self, post: str) -> int:
        rows = self._all("SELECT contiguous FROM posts WHERE post = ?", (post,))
        return int(rows[0][0]) if rows else 0

    def count(self, post: str | None = None) -> int:
        if post is None:
            return int(self._all("SELECT COUNT(*) FROM events")[0][0])
        return int(self._all("SELECT COUNT(*) FROM events WHERE post = ?", (post,))[0][0])

    def seqs(self, post: str) -> list[int]:
        return [s for (s,) in self._all("SELECT seq FROM events WHERE post = ? ORDER BY seq",
                                         (post,))]  # fmt: skip

    def lost(self, post: str) -> list[tuple[int, int]]:
        rows = self._all("SELECT first, last FROM lost WHERE post = ? ORDER BY first", (post,))
        return [(a, b) for a, b in rows]

    def lost_reasons(self, post: str, limit: int = 100) -> list[dict[str, Any]]:
        """The post's newest lost ranges: `first`, `last`, `reason` (None: not given) and
        when the district heard of them (`reported`)."""
        rows = self._dicts(
            "SELECT first, last, reason, reported FROM lost WHERE post = ? "
            "ORDER BY first DESC LIMIT ?",
            (post, limit),
        )
        return rows[::-1]

    def gaps(self, post: str, limit: int = 100) -> list[tuple[int, int]]:
        """Seq ranges the district is still waiting for (neither stored nor declared lost)."""
        row = self._all("SELECT contiguous, max_seq FROM posts WHERE post = ?", (post,))
        if not row:
            return []
        held, top = row[0]
        present = self._all(
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

    def posts(self) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT * FROM posts")
        for row in rows:
            row["status"] = json.loads(row["status"]) if row["status"] else {}
        return sorted(rows, key=lambda row: str(row["post"]))  # one order on every backend

    def quarantined(self, post: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, received, topic, post, reason, size FROM quarantine"
        if post:
            return self._dicts(query + " WHERE post = ? ORDER BY id", (post,))
        return self._dicts(query + " ORDER BY id")

    def quarantine_counts(self) -> dict[str | None, int]:
        rows = self._all("SELECT post, payloads FROM quarantine_totals")
        return {post or None: int(count) for post, count in rows}


def _purge_niks(db: Any, before: str) -> int:
    rows = db.execute(
        "SELECT post, seq, data FROM events WHERE kind = 'visitor' AND time < ? "
        "AND data LIKE '%\"nik\"%'",
        (before,),
    ).fetchall()
    changed = []
    for post, seq, data in rows:
        details = json.loads(data)
        if isinstance(details, dict) and details.pop("nik", None) is not None:
            changed.append((json.dumps(details, ensure_ascii=False), post, seq))
    db.executemany("UPDATE events SET data = ? WHERE post = ? AND seq = ?", changed)
    return len(changed)
