"""Visitors of the last days: their details, who has left, and who is overdue.

A visitor (*pendatang*) must report within 1×24 hours; one whose entry is older than that
and who is not marked departed is overdue. The book reads the last `LOOKBACK_DAYS` once,
then follows the station's events, so the visitors page never scans the history.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from edge.events import Event, Kind, Who, parse_time
from edge.store import EventStore

REPORT_WITHIN = timedelta(hours=24)  # wajib lapor 1×24 jam
LOOKBACK_DAYS = 14  # visitors older than this are no longer followed


@dataclass(frozen=True)
class Visitor:
    seq: int
    time: datetime
    details: dict[str, Any]
    departed: bool

    def overdue(self, now: datetime) -> bool:
        return not self.departed and now - self.time > REPORT_WITHIN


class VisitorBook:
    """Visitor entries with their latest details; every update is idempotent by seq."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._loaded = False
        self._entries: dict[int, datetime] = {}
        self._details: dict[int, tuple[int, dict[str, Any]]] = {}  # ref -> (seq, data)
        self._departed: set[int] = set()
        self._voided: set[int] = set()

    def apply(self, event: Event) -> None:
        """Take one stored event into account (a station listener; order does not matter)."""
        kind, ref = event["kind"], event.get("ref")
        with self._lock:
            if kind == Kind.IN and event.get("who") == Who.VISITOR:
                self._entries[event["seq"]] = parse_time(event["time"])
            elif kind == Kind.VOID and ref is not None:
                self._voided.add(ref)
            elif kind == Kind.DEPARTED and ref is not None:
                self._departed.add(ref)
            elif kind == Kind.VISITOR and ref is not None:
                known = self._details.get(ref)
                if known is None or known[0] < event["seq"]:
                    self._details[ref] = (event["seq"], dict(event.get("data") or {}))

    def load(self, now: datetime) -> None:
        """Read the last days once (later events arrive through `apply`)."""
        if self._loaded:
            return
        today = now.astimezone(self.store.zone).date()
        first = (today - timedelta(days=LOOKBACK_DAYS)).isoformat()
        for event in self.store.iter_between(first, "9999-12-31"):
            self.apply(event)
        self._loaded = True

    def visitors(self, now: datetime) -> list[Visitor]:
        """Visitors who entered in the lookback window and were not voided, newest first."""
        self.load(now)
        horizon = now - timedelta(days=LOOKBACK_DAYS + 1)
        with self._lock:
            self._prune(horizon)
            return [
                Visitor(seq, t, self._details.get(seq, (0, {}))[1], seq in self._departed)
                for seq, t in sorted(self._entries.items(), reverse=True)
                if seq not in self._voided
            ]

    def _prune(self, horizon: datetime) -> None:
        """Forget visitors older than the window, and corrections of them (bounded memory)."""
        old = [s for s, t in self._entries.items() if t < horizon]
        if not old:
            return
        for seq in old:
            del self._entries[seq]
        low = min(self._entries, default=max(old) + 1)
        self._voided = {s for s in self._voided if s >= low}
        self._departed = {s for s in self._departed if s >= low}
        self._details = {s: d for s, d in self._details.items() if s >= low}

    def overdue(self, now: datetime) -> list[Visitor]:
        """Overdue visitors, the longest overdue first."""
        return sorted((v for v in self.visitors(now) if v.overdue(now)), key=lambda v: v.seq)

    def details(self, seq: int) -> dict[str, Any]:
        with self._lock:
            return dict(self._details.get(seq, (0, {}))[1])
