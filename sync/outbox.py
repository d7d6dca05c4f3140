"""The Pi's outbox: which batches go on the wire, and what an acknowledgement changes.

The store is the outbox. Batches are cut from the synced watermark on (bounded by count
and bytes, a small window in flight); only the district's cumulative ack moves the
watermark. An unacknowledged batch is sent again after a timeout that doubles with each
try, and sooner when an ack shows the district has a later batch but not this one.
No MQTT here: `sync.worker` does the talking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.events import Event
from edge.segments import Lost
from edge.store import EventStore
from sensors.errors import StoreError
from sync.batch import MAX_LOST_RANGES, MAX_LOST_SEQS, Batch
from sync.codec import CURRENT, encode
from sync.messages import Ack
from sync.options import SyncOptions

log = logging.getLogger(__name__)

GAP_GRACE_S = 1.0  # a batch missing behind an acknowledged one is sent again this soon
MAX_BACKOFF_TRIES = 4  # the resend timeout grows to at most 2**4 times the setting


@dataclass
class Flight:
    """A batch on its way: the seq range it covers and its payload, kept for resending."""

    first: int
    last: int
    events: int
    payload: bytes
    deadline: float
    tries: int = 0


@dataclass
class OutboxStats:
    batches: int = 0  # batches published, resends included
    events: int = 0  # events published, resends included
    resent: int = 0  # batches published again
    payload_bytes: int = 0  # batch payload bytes published
    acks: int = 0  # acknowledgements received


class Outbox:
    def __init__(
        self,
        store: EventStore,
        options: SyncOptions,
        *,
        version: int = CURRENT,
        now: Callable[[], float] = time.monotonic,
        save: Callable[[int], object] | None = None,
    ) -> None:
        self.store = store
        self.options = options
        self.version = version
        self.now = now
        # The district's ack as known here; `save` makes it the store's durable watermark
        # (at once by default; the worker hands it to a thread so no fsync stalls sending).
        self.acked = store.acked
        self.save = save or self._save_now
        self.cursor = store.acked + 1  # the first seq not yet in a flight
        self.flights: list[Flight] = []
        self.stats = OutboxStats()
        self.refused: str | None = None  # why the district refused the last batch, if it did
        self._unexplained: int | None = None  # a seq missing here that the store never recorded

    @property
    def drained(self) -> bool:
        return self.store.acked >= self.store.last_seq

    def restart(self) -> None:
        """A new connection: nothing is known to be on its way; start at the watermark."""
        self.flights.clear()
        self.cursor = self.acked + 1

    def rewind(self, seq: int) -> None:
        """The district's new epoch holds only up to seq: send again from there."""
        self.acked = seq
        self.restart()

    def due(self) -> list[Flight]:
        """Flights to publish now: timed-out ones again, then new ones while the window has room."""
        now = self.now()
        out = []
        for flight in self.flights:
            if flight.deadline <= now:
                flight.tries += 1
                flight.deadline = now + self._timeout(flight.tries)
                self.stats.resent += 1
                out.append(flight)
        while len(self.flights) < self.options.window:
            new = self._next(now)
            if new is None:
                break
            self.flights.append(new)
            out.append(new)
        for flight in out:
            self.stats.batches += 1
            self.stats.events += flight.events
            self.stats.payload_bytes += len(flight.payload)
        return out

    def next_deadline(self) -> float | None:
        return min((f.deadline for f in self.flights), default=None)

    def _timeout(self, tries: int) -> float:
        return self.options.ack_timeout * 2.0 ** min(tries, MAX_BACKOFF_TRIES)

    def _next(self, now: float) -> Flight | None:
        """The next batch from the cursor, or None when everything is in flight."""
        last_seq = self.store.last_seq  # read first: every seq up to it is stored or lost
        start = self.cursor
        if start > last_seq:
            return None
        limit = self.options.batch_events
        found = self.store.since(start - 1, limit)
        events = [e if "data" not in e else self.outgoing(e) for e in found if e["seq"] <= last_seq]
        end = events[-1]["seq"] if len(events) == limit else last_seq
        end, declared = self._declare(start, end, events)
        if end < start:
            return None  # stuck at a seq the store cannot account for (logged)
        events = [e for e in events if e["seq"] <= end]
        payload = self._encode(start, end, events, declared)
        while len(payload) > self.options.batch_bytes and len(events) > 1:
            keep = int(len(events) * self.options.batch_bytes / len(payload) * 0.9)
            events = events[: min(max(keep, 1), len(events) - 1)]
            end = events[-1]["seq"]
            payload = self._encode(start, end, events, declared)
        self.cursor = end + 1
        return Flight(start, end, len(events), payload, now + self._timeout(0))

    def _encode(self, start: int, end: int, events: list[Event], declared: list[Lost]) -> bytes:
        listed = tuple(
            Lost(r.first, min(r.last, end), r.reason) for r in declared if r.first <= end
        )
        return encode(Batch(self.options.post, start, end, events, listed), self.version)

    def _declare(self, start: int, end: int, events: list[Event]) -> tuple[int, list[Lost]]:
        """The end of the batch and the lost seqs it lists: only seqs the store recorded as
        lost, at most MAX_LOST_SEQS in MAX_LOST_RANGES ranges; the batch ends before a
        missing seq the store never recorded (that one is never declared lost)."""
        holes = Batch(self.options.post, start, end, events).lost()
        if not holes:
            return end, []
        recorded = self.store.lost_between(start, end)
        declared: list[Lost] = []
        total = 0
        for first, last in holes:
            at = first
            for r in recorded:
                if r.last < at or r.first > last:
                    continue
                if r.first > at:
                    break  # a missing seq between recorded ones
                piece = Lost(at, min(r.last, last), r.reason)
                room = MAX_LOST_SEQS - total
                if len(declared) == MAX_LOST_RANGES or room <= 0:
                    return at - 1, declared
                if piece.size > room:
                    piece = Lost(piece.first, piece.first + room - 1, piece.reason)
                    declared.append(piece)
                    return piece.last, declared
                declared.append(piece)
                total += piece.size
                at = piece.last + 1
            if at <= last:
                self._cannot_declare(at)
                return at - 1, declared
        return end, declared

    def _cannot_declare(self, seq: int) -> None:
        if self._unexplained != seq:
            self._unexplained = seq
            log.error(
                "seq %d is missing from the store but was never recorded as lost: sync "
                "stops before it rather than tell the district it is lost",
                seq,
            )

    def outgoing(self, event: Event) -> Event:
        """The event as it may leave the Pi (no NIK unless sync.send_nik)."""
        data = event.get("data")
        if self.options.send_nik or not isinstance(data, dict) or "nik" not in data:
            return event
        return {**event, "data": {k: v for k, v in data.items() if k != "nik"}}

    def acknowledge(self, *acks: Ack) -> bool:
        """Apply acks from the district, saving the watermark once; True if it moved."""
        store = self.store
        valid = []
        for ack in acks:
            self.stats.acks += 1
            if ack.ack > store.last_seq:
                log.warning(
                    "the district acknowledges seq %d but the last event here is %d: "
                    "ignored (was this post id used by another Pi?)",
                    ack.ack,
                    store.last_seq,
                )
                continue
            if ack.error is not None:
                self._refused(ack)
            valid.append(ack)
        best = max((a.ack for a in valid), default=0)
        moved = best > self.acked
        if moved:
            self.acked = best
            self.save(best)
        held = self.acked
        self.flights = [f for f in self.flights if f.last > held]
        self.cursor = max(self.cursor, held + 1)
        for ack in valid:
            if (
                ack.first is not None
                and ack.last is not None
                and ack.last > held
                and (ack.first > max(ack.ack, held) + 1)
            ):
                self._hurry(before=ack.first)
        if moved and self.refused is not None and not any(a.error for a in valid):
            self.refused = None
        return moved

    def _save_now(self, seq: int) -> None:
        try:
            self.store.acknowledge(seq)
        except StoreError as e:
            log.error("cannot save the acknowledgement of seq %d: %s", seq, e)

    def _hurry(self, before: int) -> None:
        """The district holds a later batch but not the seqs before it: resend those soon."""
        soon = self.now() + GAP_GRACE_S
        for flight in self.flights:
            if flight.first < before and flight.deadline > soon:
                flight.deadline = soon

    def _refused(self, ack: Ack) -> None:
        reason = f"the district refused batch {ack.first}-{ack.last}: {ack.error}"
        if reason != self.refused:
            log.error("%s", reason)
        self.refused = reason
