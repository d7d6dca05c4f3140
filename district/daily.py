"""Each post's figures per local day (table `daily`), kept in the transaction that stores a
batch, so that the overview and the rekap read a few hundred rows instead of millions of
events. The figures are those of `edge.tally.summarize` and the guard's day report.

Rules, per post and local day (the district's zone):
- counts (in/out by who, first readings, refused second readings, sensor faults,
  emergencies) take the day's events that no `void` of the SAME day names, as summarize
  does; `voided` is how many seqs the day's voids name. Only events new to the database
  count (a batch sent twice, or out of order, changes nothing twice).
- visitors inside (and waiting for a second reading) at the end of a day: the visits of
  the day and the 14 lookback days before it (the rules of `edge.tally.visits`, replayed
  here in O(n log n)), from the stored events, whenever an event that can change a visit
  arrives for one of those days (and for a post's first event of a day). A day without
  any event of a post has no row.
- a retention purge deletes events but never these rows: the rekap of old days stays.
  `rebuild` recomputes everything from the events (at open, for a database made before
  this table existed); after a purge it would lose the purged days, so it never runs then.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from district.localdays import Calendar, day_of, days
from district.storage import SQLHandle, StorageError
from edge.events import Kind, Screening, Who
from edge.tally import lookback_first

log = logging.getLogger(__name__)

# The counted columns of a row, in table order; `in` and `out` are their sums.
COUNTS = (
    "in_resident",
    "in_visitor",
    "out_resident",
    "out_visitor",
    "normal",  # first readings below the threshold
    "fevers",  # first readings at or above it (ukur ulang)
    "faults",  # first readings that were sensor faults
    "refused",  # second readings at or above it (ditolak)
    "sensor_faults",  # first or second readings that were sensor faults
    "emergencies",
)
KEPT = ("events", "voided", *COUNTS, "visitors_inside", "visitors_waiting")
FIGURES = ("in", "out", *KEPT)  # the keys of every figures dict this module returns
_SEQS = 900  # seqs per IN (...) query, under SQLite's default limit of variables
VISIT_SQL = (
    "(kind IN ('void', 'recheck', 'departed') OR (kind IN ('in', 'out') AND who = 'visitor'))"
)
VOID_SQL = f"kind = 'void' AND {VISIT_SQL}"  # so that the events_visits index serves it
_ROW = "seq, time, kind, who, screening, ref"

Row = tuple[int, str, str, str | None, str | None, int | None]  # an event, as _ROW reads it


@lru_cache(maxsize=64)
def counted(kind: str, who: str | None, screening: str | None) -> tuple[str, ...]:
    """The columns one live (not voided) event adds 1 to."""
    found: list[str] = []
    if kind in (Kind.IN, Kind.OUT) and who in (Who.RESIDENT, Who.VISITOR):
        found.append(f"{kind}_{who}")
    if kind == Kind.IN:
        first = {"normal": "normal", "recheck": "fevers", "fault": "faults"}.get(screening or "")
        found.extend([first] if first else [])
    if kind == Kind.RECHECK and screening == Screening.REFUSED:
        found.append("refused")
    if kind in (Kind.IN, Kind.RECHECK) and screening == Screening.FAULT:
        found.append("sensor_faults")
    if kind == Kind.EMERGENCY:
        found.append("emergencies")
    return tuple(found)


def follows_visits(kind: str, who: str | None) -> bool:
    """Whether an event can change a visit (the events `VISIT_SQL` reads back)."""
    return kind in (Kind.VOID, Kind.RECHECK, Kind.DEPARTED) or (
        kind in (Kind.IN, Kind.OUT) and who == Who.VISITOR
    )


# -- writing: in the transaction that stores a group of batches (district.daily_group) ---


def later(day: str, days: int) -> str:
    """The day `days` after `day`, or the calendar's last."""
    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except OverflowError:
        return date.max.isoformat()


def _visitors(window: dict[str, list[Row]], day: str) -> tuple[int, int]:
    """Visitors inside and waiting at the end of `day`, from the events that follow visits
    per local day (at least those of its lookback days)."""
    return replay([row for one in days(lookback_first(day), day) for row in window.get(one, ())])


def replay(rows: list[Row]) -> tuple[int, int]:
    """(inside, waiting) after these events (those that follow visits), by the rules of
    `edge.tally.visits`; a heap finds the visitor inside longest (its `longest_inside`
    scans every visit each time). Plain strings: this loop runs for every batch."""
    ordered = sorted(rows)
    cancelled = {row[5] for row in ordered if row[2] == "void"}
    state: dict[int, str] = {}  # entry seq: "waiting", "inside", "refused" or "left"
    inside: list[int] = []  # entry seqs that went inside (a heap; some have left since)
    for seq, _, kind, who, screening, ref in ordered:
        if kind == "in":  # the commonest first
            if who == "visitor" and seq not in cancelled:
                if screening == "recheck":
                    state[seq] = "waiting"
                else:
                    state[seq] = "inside"
                    heapq.heappush(inside, seq)
        elif kind == "void" or seq in cancelled:
            continue
        elif kind == "recheck":
            if ref is not None and screening != "fault" and state.get(ref) == "waiting":
                state[ref] = "refused" if screening == "refused" else "inside"
                if screening != "refused":
                    heapq.heappush(inside, ref)
        elif kind == "departed" or (kind == "out" and who == "visitor"):
            if ref is None and kind == "out":  # a Keluar that names no one
                while inside and state[inside[0]] != "inside":
                    heapq.heappop(inside)
                ref = inside[0] if inside else None
            if ref is not None and state.get(ref) in ("inside", "waiting"):
                state[ref] = "left"
    found = Counter(state.values())
    return found["inside"], found["waiting"]


# -- rebuilding from the events -----------------------------------------------------------


def rebuild(handle: SQLHandle, zone: ZoneInfo) -> int:
    """Recompute the whole table from the stored events, in one transaction; the rows
    written. Days whose events a purge deleted are lost: never call it after a purge."""
    written = 0
    with handle.transaction() as db:
        db.execute("DELETE FROM daily")
        posts = [post for (post,) in db.execute("SELECT post FROM posts ORDER BY post")]
        for n, post in enumerate(posts, 1):
            rows = db.execute(f"SELECT {_ROW} FROM events WHERE post = ? ORDER BY seq", (post,))
            days = _post_days(post, rows, zone)
            db.executemany(
                f"INSERT INTO daily (post, day, first_seq, last_seq, {', '.join(KEPT)}) "
                f"VALUES (?, ?, ?, ?, {', '.join('?' * len(KEPT))})",
                days,
            )
            written += len(days)
            if n % 100 == 0:
                log.info("daily figures: %d of %d posts rebuilt", n, len(posts))
    return written


def _post_days(post: str, rows: Iterable[Row], zone: ZoneInfo) -> list[tuple[Any, ...]]:
    """One post's rows of the table, from all its events in seq order."""
    by_day: dict[str, list[Row]] = defaultdict(list)
    rows = list(rows)
    if rows:
        first, last = min(r[1] for r in rows), max(r[1] for r in rows)
        calendar = Calendar(zone, day_of(first, zone), day_of(last, zone))
    for row in rows:
        by_day[calendar.day(row[1])].append(row)
    window = {
        day: [row for row in group if follows_visits(row[2], row[3])]
        for day, group in by_day.items()
    }
    found = []
    for day in sorted(by_day):
        group = by_day[day]
        cancelled = {row[5] for row in group if row[2] == Kind.VOID and row[5] is not None}
        counts: Counter[str] = Counter(events=len(group), voided=len(cancelled))
        for seq, _, kind, who, screening, _ in group:
            if seq not in cancelled:
                counts.update(counted(kind, who, screening))
        inside, waiting = _visitors(window, day)
        counts.update(visitors_inside=inside, visitors_waiting=waiting)
        seqs = [row[0] for row in group]
        found.append((post, day, min(seqs), max(seqs), *(counts[name] for name in KEPT)))
    return found


def catch_up(handle: SQLHandle, zone: ZoneInfo) -> None:
    """Fill the table once for a database made before it existed (events, no rows)."""
    with _reading():
        if handle.conn.execute("SELECT 1 FROM daily LIMIT 1").fetchone() is not None:
            return
        if handle.conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
            return
    log.info("computing the daily figures from the stored events (once)")
    log.info("daily figures: %d post-days written", rebuild(handle, zone))


# -- reading: the overview and the rekap -------------------------------------------------


@contextmanager
def _reading() -> Iterator[None]:
    try:
        yield
    except Exception as e:  # sqlite3.Error or a driver's own: the seam's error
        if isinstance(e, StorageError):
            raise
        raise StorageError(f"district database (daily figures): {e}") from e


def _figures(values: Iterable[Any]) -> dict[str, int]:
    kept = dict(zip(KEPT, (int(v or 0) for v in values), strict=True))
    return {
        "in": kept["in_resident"] + kept["in_visitor"],
        "out": kept["out_resident"] + kept["out_visitor"],
        **kept,
    }


def _only(posts: Collection[str] | None) -> list[list[str] | None]:
    """The post filter in chunks that fit one query each ([None]: every post)."""
    if posts is None:
        return [None]
    names = sorted(set(posts))
    return [names[i : i + _SEQS] for i in range(0, len(names), _SEQS)] or [[]]


def day_figures(
    handle: SQLHandle, day: str, posts: Collection[str] | None = None
) -> dict[str, dict[str, int]]:
    """{post: figures} of one local day (YYYY-MM-DD) for every post with an event that day
    (or those of `posts`); figures: the keys of FIGURES, all ints (`in`, `out`,
    `in_resident`, ..., `fevers`, `refused`, `sensor_faults`, `emergencies`,
    `visitors_inside` at the end of the day). A post without a row had no event that day."""
    query = f"SELECT post, {', '.join(KEPT)} FROM daily WHERE day = ?"
    found: dict[str, dict[str, int]] = {}
    with _reading():
        for chunk in _only(posts):
            where = "" if chunk is None else f" AND post IN ({', '.join('?' * len(chunk))})"
            for post, *values in handle.conn.execute(query + where, (day, *(chunk or ()))):
                found[post] = _figures(values)
    return dict(sorted(found.items()))


def days_figures(
    handle: SQLHandle, first: str, last: str, posts: Collection[str] | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """{day: {post: figures}} for the days from `first` to `last` in one query: what
    `day_figures` gives for each of them (a day without any row is absent)."""
    query = f"SELECT day, post, {', '.join(KEPT)} FROM daily WHERE day BETWEEN ? AND ?"
    found: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    with _reading():
        for chunk in _only(posts):
            where = "" if chunk is None else f" AND post IN ({', '.join('?' * len(chunk))})"
            args = (first, last, *(chunk or ()))
            for day, post, *values in handle.conn.execute(query + where, args):
                found[day][post] = _figures(values)
    return {day: dict(sorted(found[day].items())) for day in sorted(found)}


def trend(
    handle: SQLHandle, first: str, last: str, posts: Collection[str] | None = None
) -> dict[str, dict[str, int]]:
    """{day: figures summed over `posts` (all posts if None)} for every local day from
    `first` to `last` inclusive, in order, zeros where nothing happened (a region's
    14-day chart: `trend(h, today - 13 days, today, the region's posts)`)."""
    sums = ", ".join(f"sum({name})" for name in KEPT)
    query = f"SELECT day, {sums} FROM daily WHERE day BETWEEN ? AND ?"
    per_day: dict[str, list[dict[str, int]]] = defaultdict(list)
    with _reading():
        for chunk in _only(posts):
            where = "" if chunk is None else f" AND post IN ({', '.join('?' * len(chunk))})"
            args = (first, last, *(chunk or ()))
            for day, *values in handle.conn.execute(query + where + " GROUP BY day", args):
                per_day[day].append(_figures(values))
    return {day: total(per_day.get(day, ())) for day in days(first, last)}


def total(figures: Iterable[dict[str, int]]) -> dict[str, int]:
    """The sum of several figures dicts (a desa's posts, a kecamatan's desa)."""
    summed = dict.fromkeys(FIGURES, 0)
    for one in figures:
        for name in FIGURES:
            summed[name] += one.get(name, 0)
    return summed
