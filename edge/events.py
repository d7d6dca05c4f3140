"""The event: one immutable record of the post's append-only log.

`(post, seq)` is an event's identity everywhere. A correction (void, re-check reading,
visitor details, departure) is a new event whose `ref` points at an earlier seq.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NotRequired, Required, TypedDict
from zoneinfo import ZoneInfo


class Kind(StrEnum):
    IN = "in"  # a person entered (screened)
    OUT = "out"  # a person left (not screened)
    RECHECK = "recheck"  # the second reading of an earlier entry (ref)
    VOID = "void"  # Batal: the event at ref did not happen
    EMERGENCY = "emergency"  # Darurat
    VISITOR = "visitor"  # visitor details for the entry at ref
    DEPARTED = "departed"  # the visitor of the entry at ref left
    SETTING = "setting"  # a setting was changed
    NOTE = "note"  # anything else worth keeping (purge, calibration, start-up report)


class Who(StrEnum):
    RESIDENT = "resident"  # warga
    VISITOR = "visitor"  # pendatang


class Screening(StrEnum):
    NORMAL = "normal"
    RECHECK = "recheck"  # ukur ulang: wait, then measure again
    REFUSED = "refused"  # ditolak: refer to the puskesmas
    FAULT = "fault"  # not measured: sensor fault


class Event(TypedDict):
    """One event as it is stored, exported and sent: a plain JSON object, keys as in FIELDS.

    `make` builds one; each reader of bytes (journal, codecs, district database) checks
    them as before and casts in one place.
    """

    post: Required[str]
    seq: Required[int]
    time: Required[str]  # UTC text, see utc_text
    clock: Required[str]  # the clock's state when it was made, e.g. "synced"
    kind: Required[str]  # a Kind value
    who: NotRequired[str]  # a Who value
    temp_c: NotRequired[float]
    temp_raw_c: NotRequired[float]
    screening: NotRequired[str]  # a Screening value
    fault: NotRequired[str]
    ref: NotRequired[int]  # the seq this event corrects or completes
    photo: NotRequired[bool]  # only ever true
    data: NotRequired[dict[str, Any]]  # visitor details, a note's or a setting's content


# Field order of an event on disk and in exports: the order `Event` declares them in.
FIELDS: tuple[str, ...] = tuple(Event.__annotations__)


def utc_text(moment: datetime) -> str:
    """UTC with milliseconds, e.g. 2026-11-27T03:04:05.123Z (four-digit years throughout, so
    that the text sorts as time does; strftime writes year 500 as "500")."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_day(time_text: str, zone: ZoneInfo) -> str:
    """The post's calendar day (YYYY-MM-DD) of an event time."""
    # Every zone's offset is whole minutes, so the minute decides the day: reading a day
    # of history then converts about 1,440 distinct minutes instead of every event.
    return _day_of_minute(time_text[:16], zone)


@lru_cache(maxsize=4096)
def _day_of_minute(minute: str, zone: ZoneInfo) -> str:
    return datetime.fromisoformat(minute + ":00+00:00").astimezone(zone).date().isoformat()


def make(
    post: str,
    seq: int,
    moment: datetime,
    kind: Kind,
    *,
    clock: str = "unknown",
    who: Who | None = None,
    temp_c: float | None = None,
    temp_raw_c: float | None = None,
    screening: Screening | None = None,
    fault: str | None = None,
    ref: int | None = None,
    photo: bool = False,
    data: dict[str, Any] | None = None,
) -> Event:
    """A new event as the plain dict that is stored, exported and sent (None: left out)."""
    event: Event = {
        "post": post,
        "seq": seq,
        "time": utc_text(moment),
        "clock": clock,
        "kind": str(kind),
    }
    if who is not None:
        event["who"] = str(who)
    if temp_c is not None:
        event["temp_c"] = temp_c
    if temp_raw_c is not None:
        event["temp_raw_c"] = temp_raw_c
    if screening is not None:
        event["screening"] = str(screening)
    if fault is not None:
        event["fault"] = fault
    if ref is not None:
        event["ref"] = ref
    if photo:
        event["photo"] = photo
    if data is not None:
        event["data"] = data
    return event


def handled(emergency_seq: int) -> dict[str, Any]:
    """The fields of the `note` that marks emergencies up to `emergency_seq` handled (a note,
    not a kind of its own: districts of every version accept it)."""
    return {"ref": emergency_seq, "data": {"emergency": "handled"}}


def is_handled(event: Event) -> bool:
    data = event.get("data") or {}
    return event["kind"] == Kind.NOTE and data.get("emergency") == "handled" and "ref" in event


def mask_nik(nik: object) -> str:
    """A NIK as shown anywhere (page, CSV, command line): only its last 4 digits; "" if none."""
    text = "" if nik is None else str(nik)
    return "*" * max(len(text) - 4, 0) + text[-4:]
