"""Visitors of the last days: where each visit stands, their details, who is overdue.

A visitor (*pendatang*) must report within 1×24 hours; one who is still inside more than
that after entering is overdue. Visit states come from `edge.tally.visits`, the function
the live tile, the day report and `/api/summary` use too; the book only follows events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.events import Event, Kind
from edge.store import EventStore
from edge.tally import Ledger, Referral, VisitState, lookback_first, referrals, visits

REPORT_WITHIN = timedelta(hours=24)  # wajib lapor 1×24 jam


@dataclass(frozen=True)
class Visitor:
    seq: int
    time: datetime
    details: dict[str, Any]
    state: VisitState
    ended_by: int | None = None

    @property
    def departed(self) -> bool:
        return self.state == VisitState.LEFT

    @property
    def inside(self) -> bool:
        return self.state == VisitState.INSIDE

    def overdue(self, now: datetime) -> bool:
        return self.inside and now - self.time > REPORT_WITHIN


class VisitorBook:
    """Visitor entries with their state and latest details; every update is idempotent."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.ledger = Ledger(store.zone)
        self._lock = threading.Lock()
        self._loaded = False
        self._details: dict[int, tuple[int, dict[str, Any]]] = {}  # ref -> (seq, data)
        self._rewrites = store.rewrites  # the store's files as this book read them

    def apply(self, event: Event) -> None:
        """Take one stored event into account (a station listener; order does not matter)."""
        self.ledger.apply(event)
        ref = event.get("ref")
        if event["kind"] == Kind.VISITOR and ref is not None:
            with self._lock:
                known = self._details.get(ref)
                if known is None or known[0] < event["seq"]:
                    self._details[ref] = (event["seq"], dict(event.get("data") or {}))

    def load(self, now: datetime) -> None:
        """Read the lookback window once (later events arrive through `apply`), and again
        after a purge or an erasure rewrote the store: what it removed must not be shown."""
        with self._lock:
            if self._rewrites != self.store.rewrites:
                self._rewrites, self._loaded = self.store.rewrites, False
                self.ledger = Ledger(self.store.zone)
                self._details = {}
            if self._loaded:
                return
            self._loaded = True
        today = self.store.today(now)
        for event in self.store.iter_between(lookback_first(today), today):
            self.apply(event)

    def window(self, now: datetime) -> list[Event]:
        self.load(now)
        return self.ledger.window(self.store.today(now))

    def visitors(self, now: datetime) -> list[Visitor]:
        """Visitors who entered in the lookback window and were not voided, newest first."""
        found = visits(self.window(now))
        with self._lock:
            kept = {v.seq for v in found}
            self._details = {s: d for s, d in self._details.items() if s in kept}
            return [
                Visitor(v.seq, v.time, self._details.get(v.seq, (0, {}))[1], v.state, v.ended_by)
                for v in sorted(found, key=lambda v: v.seq, reverse=True)
            ]

    def inside(self, now: datetime) -> list[Visitor]:
        """Visitors inside now, the one inside longest first (the order of the picker)."""
        return sorted((v for v in self.visitors(now) if v.inside), key=lambda v: v.seq)

    def overdue(self, now: datetime) -> list[Visitor]:
        """Overdue visitors, the longest overdue first."""
        return sorted((v for v in self.visitors(now) if v.overdue(now)), key=lambda v: v.seq)

    def referrals(self, now: datetime) -> list[Referral]:
        """Refusals of the lookback window, oldest first, with their follow-up if any."""
        return referrals(self.window(now))
