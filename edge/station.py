"""The station: one press becomes a screened, durable event, then the guard's feedback.

Presses from the buttons and from the screen go through one queue and one worker thread,
the only writer of the store; the guard is told "stored" only once the event is durable.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from edge.config import Config
from edge.events import Event, Kind, Screening, Who, parse_time
from edge.screening import decide
from edge.store import EventStore
from edge.tally import (
    Ledger,
    PendingRecheck,
    longest_inside,
    lookback_first,
    pending_rechecks,
    voided,
)
from edge.tally import visits as visit_states
from sensors.buttons import ENTRY, Press
from sensors.camera import Camera
from sensors.errors import CameraError, StoreUnavailable
from sensors.thermometer import Reading, Thermometer

log = logging.getLogger(__name__)

WHO = {
    "masuk_warga": Who.RESIDENT,
    "masuk_pendatang": Who.VISITOR,
    "keluar_warga": Who.RESIDENT,
    "keluar_pendatang": Who.VISITOR,
}
VOIDABLE = {Kind.IN, Kind.OUT, Kind.RECHECK, Kind.EMERGENCY}
PATTERN = {
    Screening.NORMAL: "stored",
    Screening.RECHECK: "recheck",
    Screening.REFUSED: "refused",
    Screening.FAULT: "fault",
    None: "stored",
}


class Clock(Protocol):
    def now(self) -> datetime: ...

    def state(self) -> str: ...


class Signal(Protocol):
    def play(self, name: str) -> None: ...


@dataclass(frozen=True)
class Record:
    """A non-button event for the log (visitor details, departure, setting, note)."""

    kind: Kind
    fields: dict[str, Any]
    button: str = "record"  # so that outcomes of records look like those of presses


@dataclass(frozen=True)
class Outcome:
    """What one press led to: the durable event (or none) and the pattern the guard got."""

    press: Press | Record
    event: Event | None
    pattern: str
    message: str = ""


@dataclass
class Health:
    started: datetime | None = None
    last_outcome: Outcome | None = None
    store_error: str | None = None
    handled: int = 0
    errors: list[str] = field(default_factory=list)


class Station:
    """Owns the press path. Call `start()`, then `submit()` presses; `close()` drains it."""

    def __init__(
        self,
        config: Config,
        store: EventStore,
        *,
        thermometer: Thermometer | None,
        clock: Clock,
        camera: Camera | None = None,
        feedback: Signal | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.thermometer = thermometer
        self.camera = camera
        self.feedback = feedback
        self.clock = clock
        self.health = Health()
        self._queue: queue.Queue[tuple[Press | Record, Future[Outcome]] | None] = queue.Queue()
        self._listeners: list[Callable[[Event], None]] = []
        self._watchers: list[Callable[[Outcome], None]] = []
        self._thread = threading.Thread(target=self._work, name="station", daemon=True)
        self.pending: list[PendingRecheck] = []
        self._refresh_pending()
        self.ledger = Ledger(store.zone)  # who is inside, for a physical Keluar Pendatang
        today = store.today(clock.now())
        for event in store.iter_between(lookback_first(today), today):
            self.ledger.apply(event)

    # -- public --------------------------------------------------------------------

    def start(self) -> Station:
        self.health.started = self.clock.now()
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, press: Press | Record) -> Future[Outcome]:
        """Queue a press (from a button callback or the screen) or a record; never blocks."""
        done: Future[Outcome] = Future()
        self._queue.put((press, done))
        return done

    def press(self, button: str, held: bool = False, timeout: float = 10.0) -> Outcome:
        return self.submit(Press(button, held)).result(timeout)

    def record(self, kind: Kind, **fields: Any) -> Future[Outcome]:
        """Queue a correction or note (e.g. Kind.VISITOR with ref and data) for the log.

        It goes through the same worker as presses, so the store keeps a single writer;
        the outcome's pattern is "stored" (no lights are played for records).
        """
        return self.submit(Record(kind, fields))

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call `listener(event)` in the station thread after each event is durable."""
        self._listeners.append(listener)

    def watch(self, watcher: Callable[[Outcome], None]) -> None:
        """Call `watcher(outcome)` in the station thread after every press is handled."""
        self._watchers.append(watcher)

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the presses already queued, then stop the worker. Idempotent."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def __enter__(self) -> Station:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            press, done = item
            try:
                outcome = self._handle(press)
            except Exception as e:  # the press path must survive anything
                log.exception("press %s failed", press)
                self.health.errors.append(f"{press.button}: {e}")
                outcome = Outcome(press, None, "store_unavailable", f"internal error: {e}")
            self.health.handled += 1
            self.health.last_outcome = outcome
            if self.feedback is not None and (isinstance(press, Press) or press.button in WHO):
                self.feedback.play(outcome.pattern)
            for watcher in list(self._watchers):
                watcher(outcome)
            done.set_result(outcome)

    def _handle(self, press: Press | Record) -> Outcome:
        if isinstance(press, Record):
            return self._record(press, press.kind, **press.fields)
        name = press.button
        if name in ENTRY:
            return self._recheck(press) if press.held else self._entry(press)
        if name in WHO:
            ref = self._leaving() if name == "keluar_pendatang" else None
            return self._record(press, Kind.OUT, who=WHO[name], ref=ref)
        if name == "batal":
            return self._void(press)
        if name == "darurat":
            return self._record(press, Kind.EMERGENCY, pattern="emergency")
        return Outcome(press, None, "denied", f"unknown button {name!r}")

    def _record(
        self, press: Press | Record, kind: Kind, *, pattern: str = "stored", **fields: Any
    ) -> Outcome:
        try:
            event = self.store.append(
                kind, moment=self.clock.now(), clock=self.clock.state(), **fields
            )
        except StoreUnavailable as e:
            self.health.store_error = str(e)
            return Outcome(press, None, "store_unavailable", str(e))
        self.health.store_error = None
        log.info("event %d stored: %s", event["seq"], _summary(event))
        self.ledger.apply(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("an event listener failed")
        return Outcome(press, event, pattern)

    def _entry(self, press: Press) -> Outcome:
        who = WHO[press.button]
        reading = self._read()
        verdict = (
            None
            if reading is None
            else decide(reading, second=False, threshold_c=self.config.screening.threshold_c)
        )
        photo = self._photo()
        outcome = self._record(
            press,
            Kind.IN,
            pattern=PATTERN[verdict],
            who=who,
            screening=verdict,
            photo=photo,
            **_temps(reading),
        )
        if outcome.event and verdict == Screening.RECHECK:
            self._refresh_pending()
        return outcome

    def _recheck(self, press: Press) -> Outcome:
        who = WHO[press.button]
        waiting = [p for p in self.pending if p.who == who]
        if not waiting or self.thermometer is None:
            return self._entry(press)  # held by habit: still a person entering
        wait = self.config.screening.recheck_wait_s
        now = self.clock.now()
        due = [p for p in waiting if p.due(wait) <= now]
        if not due:
            left = (waiting[0].due(wait) - now).total_seconds()
            return Outcome(
                press, None, "denied", f"re-check of #{waiting[0].seq} is due in {left:.0f} s"
            )
        reading = self._read() or Reading.failed("no_thermometer")
        verdict = decide(reading, second=True, threshold_c=self.config.screening.threshold_c)
        outcome = self._record(
            press,
            Kind.RECHECK,
            pattern=PATTERN[verdict],
            who=who,
            ref=due[0].seq,
            screening=verdict,
            **_temps(reading),
        )
        self._refresh_pending()
        return outcome

    def _void(self, press: Press) -> Outcome:
        now = self.clock.now()
        window = timedelta(seconds=self.config.buttons.void_window_s)
        recent = self.store.recent(50)
        cancelled = voided(recent)
        for event in recent:
            if event["kind"] not in VOIDABLE or event["seq"] in cancelled:
                continue
            if now - parse_time(event["time"]) > window:
                break
            outcome = self._record(
                press, Kind.VOID, pattern="voided", ref=event["seq"], who=event.get("who")
            )
            self._refresh_pending()
            return outcome
        return Outcome(press, None, "denied", "nothing recent enough to void")

    def _leaving(self) -> int | None:
        """The visitor inside longest: the one a physical Keluar Pendatang takes."""
        window = self.ledger.window(self.store.today(self.clock.now()))
        return longest_inside(visit_states(window))

    # -- hardware ------------------------------------------------------------------

    def _read(self) -> Reading | None:
        if self.thermometer is None:
            return None
        try:
            return self.thermometer.read()
        except Exception as e:  # a driver bug is a sensor fault, never a verdict
            log.exception("thermometer failed")
            return Reading.failed("driver_error", str(e))

    def _photo(self) -> bool:
        if self.camera is None:
            return False
        # The station thread is the store's only writer, so the next seq is this event's.
        path = photo_path(self.store.data_dir, self.store.next_seq)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.camera.capture(path)
        except (CameraError, OSError) as e:
            log.warning("no photo for event %d: %s", self.store.next_seq, e)
            return False
        return True

    def _refresh_pending(self) -> None:
        today = self.clock.now().astimezone(self.store.zone).date()
        since = (today - timedelta(days=1)).isoformat()
        self.pending = pending_rechecks(self.store.between(since, today.isoformat()))


def photo_path(data_dir: Path, seq: int) -> Path:
    return data_dir / "photos" / f"{seq // 1000:06d}" / f"{seq}.jpg"


def _summary(event: Event) -> str:
    parts = [
        event["kind"],
        event.get("who"),
        event.get("temp_c"),
        event.get("screening"),
        event.get("fault"),
        event.get("ref") and f"ref {event['ref']}",
    ]
    return " ".join(str(p) for p in parts if p)


def _temps(reading: Reading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    return {"temp_c": reading.celsius, "temp_raw_c": reading.raw, "fault": reading.fault}
