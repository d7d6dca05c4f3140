"""A day's figures for the live view, the day report and `/api/summary`, cached per day.

Built on `edge.tally.summarize` (the same counts as `posko status` and the district), plus
what the screen needs: entries per hour, second readings, faults, referrals and the latest
screening. A day's figures are kept until the next event is stored (keyed by `last_seq`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from edge.events import Event, Kind, Screening, parse_time
from edge.store import EventStore
from edge.tally import summarize, voided

SCREENED = (Kind.IN, Kind.RECHECK)


@dataclass(frozen=True)
class DayFigures:
    day: str
    summary: dict[str, Any]
    hourly: list[tuple[int, int]]  # entries per local hour: (residents, visitors)
    rechecks: int  # second readings taken
    faults: int  # readings (first or second) that were sensor faults
    referrals: list[dict[str, Any]] = field(default_factory=list)  # refused second readings
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
            "sensor_faults": self.faults,
            "visitor_details": self.visitor_details,
            "departures": self.departures,
            "entries_per_hour": [r + v for r, v in self.hourly],
        }


def compute(day: str, events: list[Event], zone: ZoneInfo) -> DayFigures:
    """The figures of one local day from its events (in seq order)."""
    cancelled = voided(events)
    live = [e for e in events if e["seq"] not in cancelled]
    hourly = [[0, 0] for _ in range(24)]
    entries: dict[int, Event] = {}
    for e in live:
        if e["kind"] == Kind.IN:
            entries[e["seq"]] = e
            hour = parse_time(e["time"]).astimezone(zone).hour
            hourly[hour][0 if e.get("who") == "resident" else 1] += 1
    second = [e for e in live if e["kind"] == Kind.RECHECK]
    referrals = [
        {"entry": entries.get(e.get("ref", -1)), "recheck": e}
        for e in second
        if e.get("screening") == Screening.REFUSED
    ]
    latest = next((e for e in reversed(live) if e["kind"] in SCREENED and e.get("screening")), None)
    return DayFigures(
        day=day,
        summary=summarize(events),
        hourly=[(r, v) for r, v in hourly],
        rechecks=sum(1 for e in second if e.get("screening") != Screening.FAULT),
        faults=sum(
            1 for e in live if e["kind"] in SCREENED and e.get("screening") == Screening.FAULT
        ),
        referrals=referrals,
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
        self._cache: OrderedDict[str, tuple[int, DayFigures]] = OrderedDict()

    def of_day(self, day: str) -> DayFigures:
        last = self.store.last_seq
        with self._lock:
            hit = self._cache.get(day)
            if hit is not None and hit[0] == last:
                self._cache.move_to_end(day)
                return hit[1]
        figures = compute(day, self.store.on_day(day), self.store.zone)
        with self._lock:
            self._cache[day] = (last, figures)
            self._cache.move_to_end(day)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return figures
