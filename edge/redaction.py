"""The one exception to append-only: removing personal data that UU PDP says must go.

A legal purge or a data subject's erasure replaces the `data` of events already written;
events keep post, seq, kind, ref and time, so counts and seq contiguity stay. `Redactor`
wraps a store it is handed (through the narrow `Rewritable` interface), as TinyDB's
middlewares wrap a storage; edge/retention.py and `posko privacy` decide when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from edge import events as ev
from edge.segments import Edit, Segment

PURGED: dict[str, Any] = {"purged": True}  # what a purged event's `data` becomes

Choose = Callable[[str, ev.Event], bool]  # (local day, event) -> redact it?


def names_a_person(event: ev.Event) -> bool:
    """Whether the event's data is a person's details: a visitor's, or the contact of a
    refused person's referral (a note on the entry)."""
    data = event.get("data")
    if event["kind"] == ev.Kind.VISITOR:
        return isinstance(data, dict) and data != PURGED
    return event["kind"] == ev.Kind.NOTE and isinstance(data, dict) and "referral" in data


class Rewritable(Protocol):
    """What redaction needs of a store: its zone and atomic rewrites of its segments."""

    @property
    def zone(self) -> ZoneInfo: ...

    def closed_before(self, day: str | None) -> list[Segment]: ...

    def rewrite_closed(self, segment: Segment, edit: Edit) -> bool: ...

    def rewrite_active(self, edit: Edit, before_day: str | None = None) -> bool: ...


class Redactor:
    """Replaces the personal data of chosen events in a store with `PURGED`."""

    def __init__(self, store: Rewritable) -> None:
        self.store = store

    def redact(
        self, choose: Choose, *, before_day: str | None = None, active: bool = False
    ) -> list[int]:
        """Replace the `data` of the events `choose(day, event)` picks with PURGED.

        Each segment holding one is rewritten atomically; only segments with a day before
        `before_day` are read. The segment being appended to is rewritten too when `active`
        is true. Returns the seqs redacted, in order.
        """
        done: list[int] = []
        edit = self._edit(choose, done)
        for segment in self.store.closed_before(before_day):
            self.store.rewrite_closed(segment, edit)
        if active:
            self.store.rewrite_active(edit, before_day)
        return sorted(done)

    def _edit(self, choose: Choose, done: list[int]) -> Edit:
        zone = self.store.zone

        def edit(docs: list[ev.Event]) -> list[ev.Event] | None:
            out, seqs = [], []
            for doc in docs:
                if (
                    "data" in doc
                    and doc["data"] != PURGED
                    and choose(ev.local_day(doc["time"], zone), doc)
                ):
                    doc = {**doc, "data": dict(PURGED)}
                    seqs.append(doc["seq"])
                out.append(doc)
            done.extend(seqs)
            return out if seqs else None

        return edit
