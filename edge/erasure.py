"""Erasing a data subject's visitor records on the Pi (UU PDP No. 27/2022, a right to erasure).

The records' personal details are redacted in place, the entries' photos deleted, and the
erasure is itself recorded as a NOTE event, which sync carries to the district.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.events import Event, Kind
from edge.journal import atomic_write
from edge.redaction import Redactor, names_a_person
from edge.station import photo_path
from edge.store import EventStore

log = logging.getLogger(__name__)

REASON = "data subject request"
IDENTIFYING = ("name", "nik", "phone")  # the details that point at one person


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
    """Visitor records by name, NIK, or number: the record's own seq, or the entry's seq
    that the Pendatang page shows (then every details record of that visitor)."""
    wanted, text = set(seqs), (name or "").casefold()
    found = []
    for event in events:
        data = event["data"]
        if (
            event["seq"] in wanted
            or event.get("ref") in wanted
            or (text and text in str(data.get("name", "")).casefold())
            or (nik and str(data.get("nik", "")) == nik)
        ):
            found.append(event)
    return found


def erase(
    store: EventStore, seqs: list[int], moment: datetime, clock: str = "unknown"
) -> dict[str, Any]:
    """Redact these visitor records everywhere on the Pi (the store must be its only writer),
    and the referral notes of the same entries; delete their entries' photos and the lines
    of files set aside in damaged/ that hold their details; then record the erasure as a
    NOTE event."""
    wanted = set(seqs)
    records = [e for e in visitor_records(store) if e["seq"] in wanted]
    refs = {e["seq"]: e.get("ref") for e in records}
    entries = {ref for ref in refs.values() if ref is not None}
    done = Redactor(store).redact(
        lambda _day, event: (
            names_a_person(event)
            and (
                event["seq"] in wanted
                or (event["kind"] == Kind.NOTE and event.get("ref") in entries)
            )
        ),
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
    if lines := erase_from_damaged(store.damaged_dir, records):
        erasure["damaged_lines"] = lines
    event = store.append(Kind.NOTE, moment=moment, clock=clock, data={"erasure": erasure})
    log.info("erasure of %d visitor record(s) recorded as event %d", len(done), event["seq"])
    return {**erasure, "event": event["seq"]}


def identifying(records: Iterable[Event]) -> set[bytes]:
    """The byte strings that identify these records' people (name, NIK, phone), as written
    raw and as JSON writes them."""
    found: set[bytes] = set()
    for record in records:
        data = record.get("data") or {}
        for key in IDENTIFYING:
            value = str(data.get(key) or "").strip()
            if len(value) >= 4:  # a shorter value would match unrelated lines
                found |= {value.encode(), json.dumps(value)[1:-1].encode()}
    return found


def erase_from_damaged(damaged_dir: Path, records: Iterable[Event]) -> int:
    """Drop every line of the files set aside in damaged/ that holds one of these records'
    identifying values (such files cannot be trusted to parse, so lines are matched as
    bytes); how many lines went."""
    needles = identifying(records)
    if not needles or not damaged_dir.is_dir():
        return 0
    dropped = 0
    for path in sorted(damaged_dir.iterdir()):
        if not path.is_file():
            continue
        lines = path.read_bytes().split(b"\n")
        kept = [line for line in lines if not any(n in line for n in needles)]
        if len(kept) != len(lines):
            dropped += len(lines) - len(kept)
            atomic_write(path, b"\n".join(kept))
    return dropped
