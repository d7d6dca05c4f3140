"""A day's figures for the live view, the day report and `/api/summary`, cached per day.

Built on `edge.tally.summarize` (the same counts as `posko status` and the district), plus
what the screen needs: entries per hour, second readings, faults, referrals and the latest
screening. A day's figures are kept until the next event is stored (keyed by `last_seq`);
the visits of the lookback days before it are read once per day.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.events import Event, Kind, Screening, parse_time
from edge.store import EventStore
from edge.tally import Referral, follows_visits, lookback_first, referrals, summarize, voided

SCREENED = (Kind.IN, Kind.RECHECK)


@dataclass(frozen=True)
class DayFigures:
    day: str
    summary: dict[str, Any]
    hourly: list[tuple[int, int]]  # entries per local hour: (residents, visitors)
    rechecks: int  # second readings taken
    faults: int  # readings (first or second) that were sensor faults
    referrals: list[Referral] = field(default_factory=list)  # refused on this day
    open_referrals: list[Referral] = field(default_factory=list)  # no follow-up yet, any day
    latest: Event | None = None  # the latest screening of the day, not voided
    visitor_details: int = 0
    departures: int = 0

    def as_json(self) -> dict[str, Any]:
        """The figures of `/api/summary`: at least date, in, out, visitors_inside, by_screening."""
        return {
            "date": self.day,
            **self.summary,
            "fevers": self.summary["by_screening"][Screening.RECHECK.value],
            "rechecks": self.rechecks,
            "referrals": len(self.referrals),
            "referrals_open": len(self.open_referrals),
            "sensor_faults": self.faults,
            "visitor_details": self.visitor_details,
            "departures": self.departures,
            "entries_per_hour": [r + v for r, v in self.hourly],
        }


def compute(
    day: str, events: list[Event], zone: ZoneInfo, earlier: list[Event] | None = None
) -> DayFigures:
    """The figures of one local day from its events (in seq order); `earlier`: the events
    of the lookback days before it that follow visits (`edge.tally.follows_visits`)."""
    earlier = earlier or []
    cancelled = voided(events)
    live = [e for e in events if e["seq"] not in cancelled]
    hourly = [[0, 0] for _ in range(24)]
    for e in live:
        if e["kind"] == Kind.IN:
            hour = parse_time(e["time"]).astimezone(zone).hour
            hourly[hour][0 if e.get("who") == "resident" else 1] += 1
    second = [e for e in live if e["kind"] == Kind.RECHECK]
    refused = referrals([*earlier, *events])
    latest = next((e for e in reversed(live) if e["kind"] in SCREENED and e.get("screening")), None)
    return DayFigures(
        day=day,
        summary=summarize(events, earlier),
        hourly=[(r, v) for r, v in hourly],
        rechecks=sum(1 for e in second if e.get("screening") != Screening.FAULT),
        faults=sum(
            1 for e in live if e["kind"] in SCREENED and e.get("screening") == Screening.FAULT
        ),
        referrals=[r for r in refused if r.time.astimezone(zone).date().isoformat() == day],
        open_referrals=[r for r in refused if r.follow_up is None],
        latest=latest,
        visitor_details=sum(1 for e in live if e["kind"] == Kind.VISITOR),
        departures=sum(1 for e in live if e["kind"] == Kind.DEPARTED),
    )


class Figures:
    """Figures per day, recomputed only when the store has a new event (O(day) then)."""

    def __init__(self, store: EventStore, size: int = 8) -> None:
        self.store = store
        self._size = size
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[tuple[int, int], DayFigures]] = OrderedDict()
        self._earlier: OrderedDict[str, list[Event]] = OrderedDict()
        self._rewrites = store.rewrites

    def of_day(self, day: str) -> DayFigures:
        # A new event, or a purge or erasure that rewrote the store, makes a day stale.
        last = (self.store.last_seq, self.store.rewrites)
        with self._lock:
            hit = self._cache.get(day)
            if hit is not None and hit[0] == last:
                self._cache.move_to_end(day)
                return hit[1]
        figures = compute(day, self.store.on_day(day), self.store.zone, self.earlier(day))
        with self._lock:
            self._cache[day] = (last, figures)
            self._cache.move_to_end(day)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return figures

    def earlier(self, day: str) -> list[Event]:
        """The events of the lookback days before `day` that follow visits: past days change
        only by a purge or an erasure, so they are read once per day asked for and rewrite."""
        with self._lock:
            if self._rewrites != self.store.rewrites:
                self._rewrites = self.store.rewrites
                self._earlier.clear()
            hit = self._earlier.get(day)
        if hit is not None:
            return hit
        if day <= date.min.isoformat():
            return []
        before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        found = [
            e for e in self.store.iter_between(lookback_first(day), before) if follows_visits(e)
        ]
        with self._lock:
            self._earlier[day] = found
            while len(self._earlier) > 2:
                self._earlier.popitem(last=False)
        return found
