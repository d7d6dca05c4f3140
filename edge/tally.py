"""Derived state from events: what was voided, who waits for a re-check, a day's counts.

Pure functions over lists of event dicts, so that the station, `posko status`, the
guard's screen and the district all compute the same figures the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.events import Event, Kind, Screening, parse_time


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


def summarize(events: Iterable[Event]) -> dict[str, Any]:
    """Counts for one day's events, voided ones left out."""
    events = list(events)
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
        "visitors_inside": max(moves[(Kind.IN, "visitor")] - moves[(Kind.OUT, "visitor")], 0),
        "by_screening": {s.value: screening[s.value] for s in Screening},
        "refused": screening[Screening.REFUSED.value],
        "emergencies": sum(1 for e in live if e["kind"] == Kind.EMERGENCY),
        "voided": len(cancelled),
        "events": len(events),
    }
