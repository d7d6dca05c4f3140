"""Darurat at the district: every stored emergency (live on the alert topic or inside a
backlog batch), whether it is still active, the operators' acknowledgements and handling
(table `emergency_actions`), escalation, and posts that have gone silent.

An emergency stays active until an operator marks it handled here, or the post's own
"handled" note arrives (`edge.events.is_handled`: it covers every emergency up to its ref).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from district.accounts import audit
from district.storage import SQLHandle, Storage, StorageError
from edge.events import local_day, parse_time, utc_text
from sensors.errors import PoskoError

log = logging.getLogger(__name__)

ACKNOWLEDGED, HANDLED = "acknowledged", "handled"
ACTIONS = (ACKNOWLEDGED, HANDLED)
MAX_NOTE = 500  # characters of an operator's note
MAX_USER = 80

# The post's own "handled" notes, through their partial index (the same WHERE as in SCHEMA).
_HANDLED_NOTES = (
    "SELECT post, ref, time FROM events WHERE kind = 'note' AND data LIKE '%\"emergency\"%' "
    "AND json_extract(data, '$.emergency') = 'handled' AND ref IS NOT NULL"
)
_NOT_VOIDED = (
    "NOT EXISTS (SELECT 1 FROM events v INDEXED BY events_voids "
    "WHERE v.kind = 'void' AND v.post = e.post AND v.ref = e.seq)"
)
_EMERGENCIES = (
    "SELECT e.post, e.seq, e.time, e.received FROM events e "
    f"WHERE e.kind = 'emergency' AND e.time >= ? AND e.time < ? AND {_NOT_VOIDED}"
)
_ACTIVE = (
    f"WITH up AS (SELECT post, max(ref) AS upto FROM ({_HANDLED_NOTES}) AS notes GROUP BY post) "
    "SELECT e.post, e.seq, e.time, e.received FROM events e LEFT JOIN up ON up.post = e.post "
    f"WHERE e.kind = 'emergency' AND e.time >= '' AND e.seq > coalesce(up.upto, 0) "
    f"AND {_NOT_VOIDED} AND NOT EXISTS (SELECT 1 FROM emergency_actions a "
    "WHERE a.post = e.post AND a.seq = e.seq AND a.action = 'handled') ORDER BY e.received"
)


class EmergencyError(PoskoError, ValueError):
    """An operator's action that cannot be recorded (no such emergency, already handled)."""


@dataclass(frozen=True)
class Rules:
    """When an emergency escalates and when a quiet post is flagged (`posko district run`
    --escalate-after, --silent-after); only daytime hours count towards silence."""

    escalate_after_s: float = 5 * 60
    silent_after_s: float = 2 * 3600
    day_start: time = time(6)
    day_end: time = time(22)


@dataclass(frozen=True)
class Action:
    action: str  # ACKNOWLEDGED or HANDLED
    at: str  # UTC time text
    user: str
    note: str = ""


@dataclass(frozen=True)
class Emergency:
    post: str
    seq: int
    time: str  # on the post's clock (UTC time text)
    received: str  # when the district stored it: escalation counts from here
    acknowledged: Action | None = None
    handled: Action | None = None  # by an operator at the district
    handled_at_post: str | None = None  # time of the post's own "handled" note

    @property
    def active(self) -> bool:
        return self.handled is None and self.handled_at_post is None

    def waiting_s(self, now: datetime) -> float:
        """Seconds since the district learned of it."""
        return max((now - parse_time(self.received)).total_seconds(), 0.0)

    def state(self, now: datetime, rules: Rules) -> str:
        """handled, acknowledged, new, or escalated (not acknowledged in time)."""
        if not self.active:
            return "handled"
        if self.acknowledged is not None:
            return "acknowledged"
        return "escalated" if self.waiting_s(now) >= rules.escalate_after_s else "new"


def sql(db: Storage) -> SQLHandle:
    """The SQL handle behind a storage (the page's own tables need one)."""
    if not hasattr(db, "conn") or not hasattr(db, "transaction"):
        raise StorageError("this storage keeps no emergency actions (SQL storage only)")
    return cast(SQLHandle, db)


def active(handle: SQLHandle) -> list[Emergency]:
    """Every emergency neither handled here nor at its post, oldest received first."""
    rows = handle.conn.execute(_ACTIVE).fetchall()
    return _with_actions(handle, [Emergency(*row) for row in rows])


def between(
    handle: SQLHandle, start: str = "", end: str = "~", post: str | None = None
) -> list[Emergency]:
    """The emergencies pressed in [start, end) (UTC time texts), voided ones left out, each
    with its acknowledgement and handling; by time."""
    query, args = _EMERGENCIES, [start, end]
    if post is not None:
        query, args = query + " AND e.post = ?", [*args, post]
    rows = handle.conn.execute(query + " ORDER BY e.time, e.post, e.seq", args).fetchall()
    found = _with_actions(handle, [Emergency(*row) for row in rows])
    posts = {e.post for e in found}
    notes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for note_post, ref, at in handle.conn.execute(_HANDLED_NOTES):
        if note_post in posts:
            notes[note_post].append((ref, at))
    return [replace(e, handled_at_post=_post_handled(e, notes[e.post])) for e in found]


def _post_handled(emergency: Emergency, notes: list[tuple[int, str]]) -> str | None:
    """The time of the first "handled" note of its post that covers it."""
    return min((at for ref, at in notes if ref >= emergency.seq), default=None)


def _with_actions(handle: SQLHandle, found: list[Emergency]) -> list[Emergency]:
    if not found:
        return found
    posts = sorted({e.post for e in found})
    marks = ", ".join("?" * len(posts))
    actions: dict[tuple[str, int], dict[str, Action]] = defaultdict(dict)
    for post, seq, action, at, user, note in handle.conn.execute(
        'SELECT post, seq, action, at, "user", note FROM emergency_actions '
        f"WHERE post IN ({marks}) ORDER BY id",
        posts,
    ):
        actions[(post, seq)].setdefault(action, Action(action, at, user, note))
    return [
        replace(
            e,
            acknowledged=actions[(e.post, e.seq)].get(ACKNOWLEDGED),
            handled=actions[(e.post, e.seq)].get(HANDLED),
        )
        for e in found
    ]


def per_day(handle: SQLHandle, start: str, end: str, zone: ZoneInfo) -> dict[tuple[str, str], int]:
    """Emergencies pressed in [start, end), voided ones left out, per (post, local day)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for post, _, at, _ in handle.conn.execute(_EMERGENCIES, (start, end)):
        counts[(post, local_day(at, zone))] += 1
    return dict(counts)


def record(
    handle: SQLHandle, post: str, seq: int, action: str, user: str, note: str = "", *, now: datetime
) -> Action:
    """Record an operator's acknowledgement or handling of the emergency (post, seq)."""
    if action not in ACTIONS:
        raise EmergencyError(f"unknown action {action[:20]!r}")
    note = note.strip()[:MAX_NOTE]
    if action == HANDLED and not note:
        raise EmergencyError("a note on how it was handled is required")
    done = Action(action, utc_text(now), user[:MAX_USER], note)
    with handle.transaction() as db:
        found = db.execute(
            "SELECT 1 FROM events WHERE post = ? AND seq = ? AND kind = 'emergency'", (post, seq)
        ).fetchone()
        if found is None:
            raise EmergencyError(f"no emergency {post[:40]} #{seq}")
        earlier = {
            a
            for (a,) in db.execute(
                "SELECT action FROM emergency_actions WHERE post = ? AND seq = ?", (post, seq)
            )
        }
        if HANDLED in earlier:
            raise EmergencyError("this emergency is already handled")
        if action in earlier:  # a second acknowledgement (two operators at once) is a no-op
            return done
        db.execute(
            'INSERT INTO emergency_actions (post, seq, action, at, "user", note) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            (post, seq, done.action, done.at, done.user, done.note),
        )
        audit(db, done.user, f"emergency_{action}", f"{post} #{seq} {note}".strip())
    log.info("emergency %s #%s %s by %s", post, seq, action, done.user)
    return done


# -- silent posts ------------------------------------------------------------------------


def daytime_s(since: datetime, now: datetime, zone: ZoneInfo, rules: Rules) -> float:
    """Seconds of daytime (rules.day_start..day_end in `zone`) between since and now: at
    night the silence clock stops, because posts may close and guards sleep."""
    if now <= since:
        return 0.0
    total = 0.0
    day = since.astimezone(zone).date()
    while day <= now.astimezone(zone).date():
        opens = datetime.combine(day, rules.day_start, zone)
        closes = datetime.combine(day, rules.day_end, zone)
        start, end = max(opens, since), min(closes, now)
        total += max((end - start).total_seconds(), 0.0)
        day += timedelta(days=1)
    return total


def silent_posts(
    posts: list[dict[str, Any]], now: datetime, zone: ZoneInfo, rules: Rules
) -> list[dict[str, Any]]:
    """Posts heard from (`last_seen`) longer ago than rules.silent_after_s in daytime hours."""
    found = []
    for row in posts:
        seen = row.get("last_seen")
        if not seen:
            continue
        quiet = daytime_s(parse_time(seen), now, zone, rules)
        if quiet >= rules.silent_after_s:
            found.append({"post": row["post"], "last_seen": seen, "silent_s": round(quiet)})
    return found
