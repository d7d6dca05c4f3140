"""Erasing a data subject's visitor records on the Pi (UU PDP No. 27/2022, a right to erasure).

The records' personal details are redacted in place, the entries' photos deleted, and the
erasure is itself recorded as a NOTE event, which sync carries to the district.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from edge.events import Event, Kind
from edge.redaction import Redactor
from edge.station import photo_path
from edge.store import EventStore

log = logging.getLogger(__name__)

REASON = "data subject request"


def visitor_records(store: EventStore) -> Iterable[Event]:
    """Every VISITOR event that still holds personal details, oldest first."""
    for event in store.iter_between("0000-01-01", "9999-12-31"):
        data = event.get("data")
        if event["kind"] == Kind.VISITOR and isinstance(data, dict) and not data.get("purged"):
            yield event


def matches(
    events: Iterable[Event],
    name: str | None = None,
    nik: str | None = None,
    seqs: Iterable[int] = (),
) -> list[Event]:
    wanted, text = set(seqs), (name or "").casefold()
    found = []
    for event in events:
        data = event["data"]
        if (
            event["seq"] in wanted
            or (text and text in str(data.get("name", "")).casefold())
            or (nik and str(data.get("nik", "")) == nik)
        ):
            found.append(event)
    return found


def erase(
    store: EventStore, seqs: list[int], moment: datetime, clock: str = "unknown"
) -> dict[str, Any]:
    """Redact these visitor records everywhere on the Pi (the store must be its only writer),
    delete their entries' photos, then record the erasure as a NOTE event."""
    wanted = set(seqs)
    refs = {e["seq"]: e.get("ref") for e in visitor_records(store) if e["seq"] in wanted}
    done = Redactor(store).redact(
        lambda _day, event: event["kind"] == Kind.VISITOR and event["seq"] in wanted,
        active=True,
    )
    photos = []
    for seq in done:
        ref = refs.get(seq)
        path = photo_path(store.data_dir, ref) if ref else None
        if path is not None and path.exists():
            path.unlink()
            photos.append(ref)
    erasure: dict[str, Any] = {"seqs": sorted(done), "reason": REASON}
    if photos:
        erasure["photos"] = sorted(photos)
    event = store.append(Kind.NOTE, moment=moment, clock=clock, data={"erasure": erasure})
    log.info("erasure of %d visitor record(s) recorded as event %d", len(done), event["seq"])
    return {**erasure, "event": event["seq"]}
