"""The daily figures of a whole group commit at once: `district.daily`'s rules for the new
events of many posts, in a fixed number of statements whatever the number of posts (each
a round trip to PostgreSQL), instead of a few per post and day.

Portable SQL only (SQLite and PostgreSQL): `?` marks, a `VALUES` list joined as a table.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from district import daily
from district.localdays import Calendar, day_of
from district.report import day_bounds
from district.storage import joined
from edge.events import Event
from edge.tally import LOOKBACK_DAYS, lookback_first

Key = tuple[str, str]  # (post, day)
_OPEN = (
    "INSERT INTO daily (post, day, first_seq, last_seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (post, day) DO UPDATE SET "
    "first_seq = min(daily.first_seq, excluded.first_seq), "
    "last_seq = max(daily.last_seq, excluded.last_seq)"
)
_ADD = (
    "UPDATE daily SET "
    + ", ".join(f"{name} = {name} + ?" for name in ("events", "voided", *daily.COUNTS))
    + " WHERE post = ? AND day = ?"
)
_E_ROW = "e.seq, e.time, e.kind, e.who, e.screening, e.ref"  # kind, who: only events has them


def record_many(db: Any, zone: ZoneInfo, fresh: dict[str, list[Event]]) -> None:
    """Count each post's `fresh` events (just inserted, none stored before) into its days,
    exactly as `daily.record` would post by post."""
    plans: dict[str, dict[str, list[Event]]] = {}
    for post, events in fresh.items():
        if events:
            times = [e["time"] for e in events]
            calendar = Calendar(zone, day_of(min(times), zone), day_of(max(times), zone))
            by_day: dict[str, list[Event]] = defaultdict(list)
            for event in events:
                by_day[calendar.day(event["time"])].append(event)
            plans[post] = by_day
    if not plans:
        return
    known = _days_within(db, [(post, min(d), max(d)) for post, d in plans.items()])
    targets = {(post, day) for post, d in plans.items() for day in d if (post, day) not in known}
    db.executemany(
        _OPEN,
        [
            (post, day, min(e["seq"] for e in group), max(e["seq"] for e in group))
            for post, by_day in plans.items()
            for day, group in by_day.items()
        ],
    )
    _count_days(db, zone, plans)
    later = [
        (post, day, daily.later(day, LOOKBACK_DAYS))
        for post, by_day in plans.items()
        for day, group in by_day.items()
        if any(daily.follows_visits(e["kind"], e.get("who")) for e in group)
    ]
    targets |= _days_within(db, later)
    _recount_visitors(db, zone, targets)


def _days_within(db: Any, spans: Sequence[tuple[str, str, str]]) -> set[Key]:
    """The (post, day) rows that exist within each (post, first day, last day)."""
    query = (
        "SELECT d.post, d.day FROM daily d JOIN k ON d.post = k.kp AND d.day BETWEEN k.lo AND k.hi"
    )
    return {(post, day) for post, day in joined(db, "kp, lo, hi", spans, query)}


def _day_rows(db: Any, zone: ZoneInfo, keys: Iterable[Key], where: str) -> dict[Key, list[Any]]:
    """Each (post, day)'s stored events that match `where` (within its seq span)."""
    spans = [(post, day, *day_bounds(day, day, zone)) for post, day in keys]
    found: dict[Key, list[Any]] = defaultdict(list)
    query = (
        f"SELECT k.kp, k.kd, {_E_ROW} FROM k JOIN daily d ON d.post = k.kp AND d.day = k.kd "
        "JOIN events e ON e.post = k.kp AND e.seq BETWEEN d.first_seq AND d.last_seq "
        f"AND e.time >= k.t0 AND e.time < k.t1 AND {where}"
    )
    for post, day, *row in joined(db, "kp, kd, t0, t1", spans, query):
        found[(post, day)].append(tuple(row))
    return found


def _count_days(db: Any, zone: ZoneInfo, plans: dict[str, dict[str, list[Event]]]) -> None:
    """Add each day's new events, and take back what their voids cancel (same day only)."""
    keys = [(post, day) for post, by_day in plans.items() for day in by_day]
    voids = _day_rows(db, zone, keys, daily.VOID_SQL)
    deltas: dict[Key, Counter[str]] = {}
    lookups: list[tuple[str, int, str]] = []  # (post, ref, day): an older event now voided
    for post, by_day in plans.items():
        fresh_seqs = {e["seq"] for group in by_day.values() for e in group}
        for day, group in by_day.items():
            day_voids = [(row[0], row[5]) for row in voids.get((post, day), ())]
            cancelled = {ref for _, ref in day_voids if ref is not None}
            delta: Counter[str] = Counter(events=len(group))
            for e in group:
                if e["seq"] not in cancelled:
                    delta.update(daily.counted(e["kind"], e.get("who"), e.get("screening")))
            old = {ref for seq, ref in day_voids if seq not in fresh_seqs}
            for ref in cancelled - old:  # named by a void for the first time on this day
                delta["voided"] += 1
                if ref not in fresh_seqs:  # new too: not counted above
                    lookups.append((post, ref, day))
            deltas[(post, day)] = delta
    for post, _ref, day, target in _targets(db, lookups):
        if day_of(target[0], zone) == day:
            deltas[(post, day)].subtract(daily.counted(*target[1:]))
    names = ("events", "voided", *daily.COUNTS)
    db.executemany(
        _ADD,
        [
            (*(delta[name] for name in names), post, day)
            for (post, day), delta in deltas.items()
            if any(delta.values())
        ],
    )


def _targets(
    db: Any, lookups: list[tuple[str, int, str]]
) -> Iterator[tuple[str, int, str, tuple[Any, ...]]]:
    """The (time, kind, who, screening) of each stored event a new void names."""
    query = (
        "SELECT k.kp, k.ks, k.kd, e.time, e.kind, e.who, e.screening FROM k "
        "JOIN events e ON e.post = k.kp AND e.seq = k.ks"
    )
    for post, ref, day, *target in joined(db, "kp, ks, kd", lookups, query):
        yield post, ref, day, tuple(target)


def _recount_visitors(db: Any, zone: ZoneInfo, targets: set[Key]) -> None:
    """Replay the visits of each target day's window from the stored events."""
    if not targets:
        return
    by_post: dict[str, list[str]] = defaultdict(list)
    for post, day in targets:
        by_post[post].append(day)
    windows = [(post, lookback_first(min(d)), max(d)) for post, d in by_post.items()]
    spans: list[tuple[Any, ...]] = []
    query = (
        "SELECT k.kp, k.lo, k.hi, min(d.first_seq), max(d.last_seq) FROM k JOIN daily d "
        "ON d.post = k.kp AND d.day BETWEEN k.lo AND k.hi GROUP BY k.kp, k.lo, k.hi"
    )
    for post, lo, hi, first_seq, last_seq in joined(db, "kp, lo, hi", windows, query):
        spans.append((post, first_seq, last_seq, *day_bounds(lo, hi, zone)))
    rows: dict[str, list[Any]] = defaultdict(list)
    query = (
        f"SELECT k.kp, {_E_ROW} FROM k JOIN events e ON e.post = k.kp "
        "AND e.seq BETWEEN k.s0 AND k.s1 "
        f"AND e.time >= k.t0 AND e.time < k.t1 AND {daily.VISIT_SQL}"
    )
    for post, *row in joined(db, "kp, s0, s1, t0, t1", spans, query):
        rows[post].append(tuple(row))
    found = []
    for post, days in by_post.items():
        by_time = sorted(rows.get(post, ()), key=lambda row: row[1])
        times = [row[1] for row in by_time]
        for day in sorted(days):  # a day's window by its time bounds: no day per row
            lo, hi = day_bounds(lookback_first(day), day, zone)
            window = by_time[bisect_left(times, lo) : bisect_left(times, hi)]
            found.append((*daily.replay(window), post, day))
    db.executemany(
        "UPDATE daily SET visitors_inside = ?, visitors_waiting = ? WHERE post = ? AND day = ?",
        found,
    )
