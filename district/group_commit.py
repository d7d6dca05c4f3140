"""The steps of one group commit on an SQL backend (`district.sqlstore.SQLStorage`):
which events are new, their rows, each post's contiguous seq past its new events and lost
ranges, the erasures the group calls for and each post's counters, each step one statement
a chunk of posts (a round trip to PostgreSQL), whatever the number of posts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from district.storage import joined
from edge.events import FIELDS, Event, utc_text
from sync.batch import Batch

Group = Sequence[tuple[Batch, bool]]  # (batch, alert) pairs of any posts
COLUMNS = (*FIELDS, "received")
ERASING = ("note", "visitor")  # kinds whose arrival may call for an erasure (UU PDP)
ERASED = json.dumps({"purged": True})  # a visitor record's data once erased
# Events whose data names a person: a visitor's details, a referral's contact (a note).
PERSONAL = "(kind = 'visitor' OR (kind = 'note' AND data LIKE '%\"referral\"%'))"
LOG_SQL = "INSERT INTO privacy_log (at, action, class, records, detail) VALUES (?, ?, ?, ?, ?)"


def now_text() -> str:
    return utc_text(datetime.now(UTC))


def unseen(db: Any, batches: Group) -> list[list[Event]]:
    """Each batch's events the database does not hold, each (post, seq) once (the first
    batch of the group holding it brings it): read under the group's lock."""
    spans = [(b.post, b.first, b.last) for b, _ in batches]
    query = (
        "SELECT e.post, e.seq FROM k JOIN events e ON e.post = k.kp AND e.seq BETWEEN k.lo AND k.hi"
    )
    stored = {(post, seq) for post, seq in joined(db, "kp, lo, hi", spans, query)}
    found = []
    for batch, _ in batches:
        mine = []
        for event in batch.events:
            key = (batch.post, event["seq"])
            if key not in stored:
                stored.add(key)
                mine.append(event)
        found.append(mine)
    return found


def rows(batch: Batch, fresh: list[Event], received: str) -> Iterator[tuple[Any, ...]]:
    """The table rows of `fresh` (a subsequence of the batch's events, in order), from the
    rows decoded with the batch where it has them."""
    if not fresh:
        return
    decoded = batch.rows if batch.rows is not None else [None] * len(batch.events)
    at = 0
    for event, row in zip(batch.events, decoded, strict=True):
        if at < len(fresh) and fresh[at] is event:
            at += 1
            yield row_of(event, received) if row is None else (*row, received)


def lost_beyond(db: Any, held: dict[str, int]) -> dict[str, list[tuple[int, int]]]:
    """Each post's lost ranges past its contiguous seq, in order, in one query a chunk."""
    found: dict[str, list[tuple[int, int]]] = {post: [] for post in held}
    query = (
        "SELECT l.post, l.first, l.last FROM k JOIN lost l ON l.post = k.kp AND l.last > k.kh "
        "ORDER BY l.post, l.first"
    )
    for post, first, last in joined(db, "kp, kh", list(held.items()), query):
        found[post].append((int(first), int(last)))
    return found


def advance(
    db: Any, post: str, held: int, top: int, new: list[Event], lost: list[tuple[int, int]]
) -> int:
    """The post's contiguous seq after this group: past what it held, through its new
    events and lost ranges (stored events read back only if some lay beyond it already)."""
    beyond: Iterable[int]
    if top > held:  # out of order before: what lies beyond is in the database
        beyond = stored_after(db, post, held)
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


def lost_of(batch: Batch) -> list[tuple[int, int, str | None]]:
    """The seq ranges the batch carries no event for, with the reason its post gave
    (version 3 on: exactly the ranges it declares); None where it gave none."""
    if batch.declared:
        return [(lost.first, lost.last, lost.reason) for lost in batch.declared]
    return [(first, last, None) for first, last in batch.lost()]


def stored_after(db: Any, post: str, seq: int, chunk: int = 1000) -> Iterator[int]:
    """The post's stored seqs after `seq`, in order, read a chunk at a time: a post with a
    gap early on must not have its whole history read back for every batch."""
    while True:
        found = [
            int(s)
            for (s,) in db.execute(
                "SELECT seq FROM events WHERE post = ? AND seq > ? ORDER BY seq LIMIT ?",
                (post, seq, chunk),
            )
        ]
        yield from found
        if len(found) < chunk:
            return
        seq = found[-1]


def apply_erasures(db: Any, batches: Group, by_post: dict[str, list[int]]) -> bool:
    """Redact the visitor records that erasure notes name (UU PDP), in the transaction;
    whether anything was removed. Batches arrive out of order, so the notes are read back
    from the first seq stored now on: a note stored earlier covers records arriving now."""
    first = {
        post: min(batches[i][0].first for i in group)
        for post, group in by_post.items()
        if any(e["kind"] in ERASING for i in group for e in batches[i][0].events)
    }
    targets: dict[str, set[int]] = defaultdict(set)
    query = (
        "SELECT e.post, e.data FROM k JOIN events e ON e.post = k.kp AND e.seq >= k.kf "
        "WHERE e.kind = 'note' AND e.data LIKE '%\"erasure\"%'"
    )
    for post, data in joined(db, "kp, kf", list(first.items()), query):
        erasure = json.loads(data).get("erasure")
        seqs = erasure.get("seqs") if isinstance(erasure, dict) else None
        if isinstance(seqs, list):
            targets[post].update(s for s in seqs if isinstance(s, int) and not isinstance(s, bool))
    removed = False
    for post, seqs in targets.items():
        removed |= erase(db, post, sorted(seqs))
    return removed


def erase(db: Any, post: str, seqs: list[int]) -> bool:
    erased = sum(
        db.execute(
            f"UPDATE events SET data = ? WHERE post = ? AND seq IN ({', '.join('?' * len(chunk))})"
            f" AND {PERSONAL} AND (data IS NULL OR data != ?)",
            (ERASED, post, *chunk, ERASED),
        ).rowcount
        for chunk in (seqs[at : at + 500] for at in range(0, len(seqs), 500))
    )
    # A refused payload of this post may hold a copy of the erased details.
    dropped = db.execute("DELETE FROM quarantine WHERE post = ?", (post,)).rowcount
    at = now_text()
    if erased:
        detail = f"post {post}, records {', '.join(map(str, seqs))}"
        db.execute(LOG_SQL, (at, "erasure", "visitor_details", erased, detail))
    if dropped:
        detail = f"post {post}, refused payloads that may hold a copy"
        db.execute(LOG_SQL, (at, "erasure", "quarantine", dropped, detail))
    return bool(erased or dropped)


def counts(
    post: str,
    batches: Group,
    group: list[int],
    fresh: list[list[Event]],
    held: int,
    top: int,
    seen: str,
) -> tuple[Any, ...]:
    """A post's row of the posts table after the group (UPDATE posts' parameters)."""
    alerts = [batches[i][0].last for i in group if batches[i][1]]
    new = sum(len(fresh[i]) for i in group)
    return (
        held,
        max(top, *(batches[i][0].last for i in group)),
        new,
        len(group) - len(alerts),
        sum(len(batches[i][0].events) for i in group) - new,
        len(alerts),
        alerts[-1] if alerts else None,
        seen,
        post,
    )


def row_of(event: Event, received: str) -> tuple[Any, ...]:
    """An event as a row of the events table (`COLUMNS`)."""
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


def event_of(row: tuple[Any, ...]) -> Event:
    """A row of `FIELDS` as the event it stores."""
    event = dict(zip(FIELDS[:5], row[:5], strict=True))
    for name, value in zip(FIELDS[5:], row[5:], strict=True):
        if value is not None:
            event[name] = (
                True if name == "photo" else json.loads(value) if (name == "data") else value
            )
    return cast(Event, event)  # a row stored by row_of from a checked batch
