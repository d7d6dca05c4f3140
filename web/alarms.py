"""Alarms that stay on the guard's screen until someone deals with them: an emergency not
yet marked handled (derived from the events, so it survives a reload and a restart), and
a press that the store could not keep (until the store works again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from edge.events import Event, Kind, handled, is_handled, utc_text
from edge.station import Outcome, Record, Station
from edge.store import EventStore
from sensors.buttons import Press

log = logging.getLogger(__name__)

OUTAGE = "store_outage"  # data key of the note that says presses were not stored
SCAN = 5000  # events read back for an emergency still open (several days of a busy post)
CHECK_S = 10.0  # how often a failed store is tried again without a press


def handled_note(emergency_seq: int) -> Record:
    """The record that marks emergencies up to `emergency_seq` handled."""
    return Record(Kind.NOTE, handled(emergency_seq))


def open_emergency(newest_first: Iterable[Event]) -> Event | None:
    """The latest emergency that was neither voided nor marked handled."""
    cancelled: set[int] = set()
    handled_upto = 0
    for event in newest_first:
        if event["kind"] == Kind.VOID and "ref" in event:
            cancelled.add(event["ref"])
        elif is_handled(event):
            handled_upto = max(handled_upto, event["ref"])
        elif event["kind"] == Kind.EMERGENCY and event["seq"] not in cancelled:
            return None if event["seq"] <= handled_upto else event
        if handled_upto and event["seq"] <= handled_upto:
            return None  # everything older was handled
    return None


@dataclass(frozen=True)
class StoreFailure:
    """Presses the store could not keep, since the first of them."""

    since: datetime
    last_at: datetime
    last_button: str
    presses: int


class Alarms:
    """Follows the station: `apply` is its event listener, `watch` its outcome watcher."""

    def __init__(
        self, store: EventStore, station: Station, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self._store = store
        self._station = station
        self._on_change = on_change  # pages look again: a lost press stores no event
        self._lock = threading.Lock()
        self._emergency = open_emergency(store.recent(SCAN))
        self._failure: StoreFailure | None = None
        self._closed = threading.Event()
        self._checker: threading.Thread | None = None

    @property
    def emergency(self) -> Event | None:
        with self._lock:
            return self._emergency

    @property
    def store_failure(self) -> StoreFailure | None:
        with self._lock:
            return self._failure

    def apply(self, event: Event) -> None:
        """A durable event (station thread)."""
        if event["kind"] == Kind.EMERGENCY:
            with self._lock:
                self._emergency = event
        elif is_handled(event) or event["kind"] == Kind.VOID:
            found = open_emergency(self._store.recent(SCAN))
            with self._lock:
                self._emergency = found

    def watch(self, outcome: Outcome) -> None:
        """Every outcome (station thread): a failed store raises the alarm, a stored event
        ends it (and leaves a note of how many presses were lost)."""
        is_check = isinstance(outcome.press, Record) and OUTAGE in outcome.press.fields.get(
            "data", {}
        )
        if outcome.pattern == "store_unavailable":
            if not is_check:
                self._failed(outcome)
                self._on_change()
            return
        if outcome.event is None:
            return
        with self._lock:
            failure, self._failure = self._failure, None
        if failure is not None and not is_check:
            self._station.submit(outage_note(failure))  # queued behind this one: never waits
        if failure is not None:
            log.warning("the store works again; %d presses were not stored", failure.presses)

    def close(self) -> None:
        self._closed.set()
        checker = self._checker
        if checker is not None and checker is not threading.current_thread():
            checker.join(CHECK_S)

    def _failed(self, outcome: Outcome) -> None:
        now = self._station.clock.now()
        pressed = 1 if isinstance(outcome.press, Press) else 0
        with self._lock:
            failure = self._failure or StoreFailure(now, now, outcome.press.button, 0)
            self._failure = replace(
                failure,
                last_at=now,
                last_button=outcome.press.button,
                presses=failure.presses + pressed,
            )
            start = self._checker is None or not self._checker.is_alive()
            if start:
                self._checker = threading.Thread(target=self._check, name="store-check")
                self._checker.daemon = True
        if start and self._checker is not None:
            self._checker.start()

    def _check(self) -> None:
        """Try the store again every CHECK_S while it fails: the note it writes on success
        both proves the store works and records the outage."""
        while not self._closed.wait(CHECK_S):
            failure = self.store_failure
            if failure is None:
                return
            self._station.submit(outage_note(failure))


def outage_note(failure: StoreFailure) -> Record:
    data: dict[str, Any] = {
        OUTAGE: {
            "since": utc_text(failure.since),
            "last": utc_text(failure.last_at),
            "presses_not_stored": failure.presses,
        }
    }
    return Record(Kind.NOTE, {"data": data})
