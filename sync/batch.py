"""A batch: the events of one contiguous seq range of one post, as it travels to the district.

Every seq in `[first, last]` without an event in the batch is one the Pi no longer has
(a damaged journal set aside): the district records it as lost instead of waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.events import Event
from sensors.errors import PoskoError

MAX_SEQ = 2**53 - 1  # seqs must survive JSON readers that use doubles
MAX_EVENTS = 10_000  # events in one batch, whatever the Pi's settings say


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
        """The seq ranges in [first, last] that the batch declares lost, in order."""
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
