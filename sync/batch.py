"""A batch: the events of one contiguous seq range of one post, as it travels to the district.

Every seq in `[first, last]` without an event in the batch is one the Pi no longer has
(a damaged journal set aside). Since batch version 3 the batch lists each such seq
explicitly with the reason its store recorded (`declared`), and the district refuses a
batch whose range implies a lost seq it does not list (`check_lost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.events import FIELDS, Event
from edge.segments import LOST_REASONS, Lost
from sensors.errors import PoskoError

# The columns of `Batch.rows`: the event's FIELDS, `photo` as 1 or None, `data` as JSON text.
ROW = FIELDS
MAX_SEQ = 2**53 - 1  # seqs must survive JSON readers that use doubles
MAX_EVENTS = 10_000  # events in one batch, whatever the Pi's settings say
# How far one batch may move a post's contiguous seq past the events it carries, and how
# many lost ranges it may list: a hostile batch cannot declare the rest of time lost.
MAX_LOST_SEQS = 10_000
MAX_LOST_RANGES = 256


class SyncError(PoskoError):
    """Base of the sync package's errors."""


class PayloadError(SyncError, ValueError):
    """A payload that must not be stored: `reason` says why, in one line."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Unencodable(SyncError, ValueError):
    """Events that an encoding cannot carry exactly (the encoder then uses an older one)."""


@dataclass(frozen=True)
class Batch:
    post: str
    first: int
    last: int
    events: list[Event] = field(default_factory=list)
    declared: tuple[Lost, ...] = ()  # the lost seqs the batch lists (version 3 on)
    # The events as rows of ROW, in the same order, when the decoder made them (a storage
    # then inserts these instead of reading each event dict again); never compared.
    rows: list[tuple[Any, ...]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        post: str,
        events: list[Event],
        first: int | None = None,
        last: int | None = None,
    ) -> Batch:
        """A batch of these events; the range defaults to their first and last seq."""
        if first is None:
            first = events[0]["seq"]
        if last is None:
            last = events[-1]["seq"]
        return cls(post, first, last, events)

    def lost(self) -> list[tuple[int, int]]:
        """The seq ranges in [first, last] that the batch carries no event for, in order
        (once `check_lost` passed, exactly the seqs it declares lost)."""
        ranges: list[tuple[int, int]] = []
        expected = self.first
        for event in self.events:
            seq = event["seq"]
            if seq > expected:
                ranges.append((expected, seq - 1))
            expected = seq + 1
        if expected <= self.last:
            ranges.append((expected, self.last))
        return ranges


def check_lost(batch: Batch) -> None:
    """PayloadError unless the batch lists every seq of its range it carries no event for,
    each once, with a known reason, and no more than MAX_LOST_SEQS of them."""
    declared = batch.declared
    if len(declared) > MAX_LOST_RANGES:
        raise PayloadError(f"{len(declared)} lost ranges listed (max {MAX_LOST_RANGES})")
    total, previous = 0, batch.first - 1
    for item in declared:
        if item.reason not in LOST_REASONS:
            raise PayloadError(f"lost reason {item.reason[:20]!r} is unknown")
        if not previous < item.first <= item.last <= batch.last:
            raise PayloadError(f"lost range {item.first}-{item.last} is out of order or range")
        previous = item.last
        total += item.size
    if total > MAX_LOST_SEQS:
        raise PayloadError(f"{total} seqs declared lost in one batch (max {MAX_LOST_SEQS})")
    listed: list[tuple[int, int]] = []
    for item in declared:
        if listed and listed[-1][1] + 1 == item.first:
            listed[-1] = (listed[-1][0], item.last)
        else:
            listed.append((item.first, item.last))
    implied = batch.lost()
    if implied != listed:
        raise PayloadError(
            f"range {batch.first}-{batch.last} implies lost seqs {_ranges(implied)} "
            f"but the batch lists {_ranges(listed)}"
        )


def _ranges(ranges: list[tuple[int, int]]) -> str:
    text = ", ".join(f"{a}-{b}" for a, b in ranges[:3]) or "none"
    return text + (f" and {len(ranges) - 3} more" if len(ranges) > 3 else "")
