"""Derived state from events: what was voided, who waits for a re-check, each visitor's
visit, open referrals and a day's counts.

Pure functions over lists of event dicts, so that the station, `posko status`, the
guard's screen and the district all compute the same figures the same way.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from edge.events import Event, Kind, Screening, Who, local_day, parse_time

LOOKBACK_DAYS = 14  # visitors who entered longer ago than this are no longer followed
REFERRAL_OUTCOMES = ("puskesmas", "home", "declined")  # dirujuk, diantar pulang, menolak


def voided(events: Iterable[Event]) -> set[int]:
    """Seqs that a `void` event cancelled (Batal never voids a void)."""
    return {e["ref"] for e in events if e["kind"] == Kind.VOID and "ref" in e}


@dataclass(frozen=True)
class PendingRecheck:
    """A person whose first reading was at or above the threshold, waiting to be measured."""

    seq: int
    who: str
    first_c: float | None
    since: datetime

    def due(self, wait_s: float) -> datetime:
        return self.since + timedelta(seconds=wait_s)


def pending_rechecks(events: Iterable[Event]) -> list[PendingRecheck]:
    """Entries flagged for a re-check that have no valid second reading yet, oldest first."""
    events = list(events)
    cancelled = voided(events)
    done = {
        e.get("ref")
        for e in events
        if e["kind"] == Kind.RECHECK
        and e["seq"] not in cancelled
        and e.get("screening") != Screening.FAULT
    }
    return [
        PendingRecheck(e["seq"], e.get("who", ""), e.get("temp_c"), parse_time(e["time"]))
        for e in events
        if e["kind"] == Kind.IN
        and e.get("screening") == Screening.RECHECK
        and e["seq"] not in cancelled
        and e["seq"] not in done
    ]


def summarize(events: Iterable[Event], earlier: Iterable[Event] = ()) -> dict[str, Any]:
    """Counts for one day's events, voided ones left out. `earlier`: the events of the
    lookback days before it (see `lookback_first`), so that a visitor who came yesterday
    and is still inside counts as inside today."""
    events = list(events)
    people = Counter(v.state for v in visits([*earlier, *events]))
    cancelled = voided(events)
    live = [e for e in events if e["seq"] not in cancelled]
    moves = Counter((e["kind"], e.get("who")) for e in live if e["kind"] in (Kind.IN, Kind.OUT))
    # Each entry counts once, by its first reading; "refused" (a subset of "recheck")
    # counts second readings at or above the threshold.
    screening = Counter(e["screening"] for e in live if e["kind"] == Kind.IN and e.get("screening"))
    screening[Screening.REFUSED.value] = sum(
        1 for e in live if e["kind"] == Kind.RECHECK and e.get("screening") == Screening.REFUSED
    )
    return {
        "in": moves[(Kind.IN, "resident")] + moves[(Kind.IN, "visitor")],
        "out": moves[(Kind.OUT, "resident")] + moves[(Kind.OUT, "visitor")],
        "in_resident": moves[(Kind.IN, "resident")],
        "in_visitor": moves[(Kind.IN, "visitor")],
        "out_resident": moves[(Kind.OUT, "resident")],
        "out_visitor": moves[(Kind.OUT, "visitor")],
        "visitors_inside": people[VisitState.INSIDE],
        "visitors_waiting": people[VisitState.WAITING],
        "by_screening": {s.value: screening[s.value] for s in Screening},
        "refused": screening[Screening.REFUSED.value],
        "emergencies": sum(1 for e in live if e["kind"] == Kind.EMERGENCY),
        "voided": len(cancelled),
        "events": len(events),
    }


def lookback_first(day: str) -> str:
    """The first day whose visitors are still followed on `day` (YYYY-MM-DD)."""
    try:
        return (date.fromisoformat(day) - timedelta(days=LOOKBACK_DAYS)).isoformat()
    except OverflowError:  # the first days of year 1, which a report may still ask for
        return date.min.isoformat()


class VisitState(StrEnum):
    WAITING = "waiting"  # first reading high, not measured again yet: not inside
    REFUSED = "refused"  # second reading high: turned away, never inside
    INSIDE = "inside"  # entered and not left
    LEFT = "left"  # Keluar Pendatang, or marked departed on the page


@dataclass(frozen=True)
class Visit:
    """One visitor's entry and where their visit stands."""

    seq: int  # the entry event
    time: datetime
    state: VisitState
    ended_by: int | None = None  # the exit or departure event that closed it


def follows_visits(event: Event) -> bool:
    """Whether `event` can change a visit or a referral (what a ledger keeps)."""
    kind = event["kind"]
    if kind in (Kind.IN, Kind.OUT):
        return event.get("who") == Who.VISITOR or event.get("screening") == Screening.RECHECK
    if kind == Kind.NOTE:
        return "ref" in event and "referral" in (event.get("data") or {})
    return kind in (Kind.RECHECK, Kind.VOID, Kind.DEPARTED)


def visits(events: Iterable[Event]) -> list[Visit]:
    """Every visitor entry that was not voided, with its state, oldest first.

    A Keluar Pendatang that names its visitor (`ref`) ends that visit; one that does not
    (older events) ends the visit of whoever has been inside longest.
    """
    ordered = sorted(events, key=lambda e: e["seq"])
    cancelled = voided(ordered)
    book: dict[int, Visit] = {}
    for e in ordered:
        if e["seq"] in cancelled:
            continue
        kind, ref = e["kind"], e.get("ref", -1)
        if kind == Kind.IN and e.get("who") == Who.VISITOR:
            waits = e.get("screening") == Screening.RECHECK
            state = VisitState.WAITING if waits else VisitState.INSIDE
            book[e["seq"]] = Visit(e["seq"], parse_time(e["time"]), state)
        elif kind == Kind.RECHECK and ref in book and e.get("screening") != Screening.FAULT:
            if book[ref].state == VisitState.WAITING:
                refused = e.get("screening") == Screening.REFUSED
                _move(book, ref, VisitState.REFUSED if refused else VisitState.INSIDE)
        elif kind == Kind.DEPARTED and ref in book:
            if book[ref].state in (VisitState.INSIDE, VisitState.WAITING):
                _move(book, ref, VisitState.LEFT, e["seq"])
        elif kind == Kind.OUT and e.get("who") == Who.VISITOR:
            leaving = ref if "ref" in e else longest_inside(book.values())
            gone = book.get(leaving) if leaving is not None else None
            if gone is not None and gone.state in (VisitState.INSIDE, VisitState.WAITING):
                _move(book, gone.seq, VisitState.LEFT, e["seq"])
    return list(book.values())


def _move(book: dict[int, Visit], seq: int, state: VisitState, ended_by: int | None = None) -> None:
    old = book[seq]
    book[seq] = Visit(old.seq, old.time, state, ended_by)


def longest_inside(people: Iterable[Visit]) -> int | None:
    """The entry of the visitor inside longest: the one a physical Keluar Pendatang takes."""
    return min((v.seq for v in people if v.state == VisitState.INSIDE), default=None)


@dataclass(frozen=True)
class Referral:
    """A person refused entry, and what became of them (None: no follow-up recorded yet)."""

    seq: int  # the entry event
    who: str
    time: datetime  # of the second reading
    first_c: float | None
    second_c: float | None
    follow_up: dict[str, Any] | None


def referrals(events: Iterable[Event]) -> list[Referral]:
    """Refused entries (second reading at or above the threshold), oldest first, each with
    the latest follow-up note (`Kind.NOTE` with `ref` and `data.referral`)."""
    ordered = sorted(events, key=lambda e: e["seq"])
    cancelled = voided(ordered)
    live = [e for e in ordered if e["seq"] not in cancelled]
    entries = {e["seq"]: e for e in live if e["kind"] == Kind.IN}
    follow = {
        e["ref"]: dict(e.get("data") or {})
        for e in live
        if e["kind"] == Kind.NOTE and "ref" in e and "referral" in (e.get("data") or {})
    }
    found: dict[int, Referral] = {}
    for e in live:
        ref = e.get("ref")
        if e["kind"] != Kind.RECHECK or e.get("screening") != Screening.REFUSED or ref is None:
            continue
        entry = entries.get(ref)
        first = entry.get("temp_c") if entry is not None else None
        found[ref] = Referral(
            ref, e.get("who", ""), parse_time(e["time"]), first, e.get("temp_c"), follow.get(ref)
        )
    return list(found.values())


class Ledger:
    """The events that decide visits and referrals over the lookback window, kept as they
    come (a station listener), so that asking costs no reading of the history."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._lock = threading.Lock()
        self._events: dict[int, tuple[str, Event]] = {}

    def apply(self, event: Event) -> None:
        if follows_visits(event):
            day = local_day(event["time"], self.zone)
            with self._lock:
                self._events[event["seq"]] = (day, event)

    def window(self, today: str) -> list[Event]:
        """The kept events of the lookback window ending `today`; older ones are forgotten."""
        first = lookback_first(today)
        with self._lock:
            old = [seq for seq, (day, _) in self._events.items() if day < first]
            for seq in old:
                del self._events[seq]
            return [e for day, e in self._events.values() if day <= today]
