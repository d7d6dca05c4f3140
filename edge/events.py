"""The event: one immutable record of the post's append-only log.

`(post, seq)` is an event's identity everywhere. A correction (void, re-check reading,
visitor details, departure) is a new event whose `ref` points at an earlier seq.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any
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


# Field order of an event on disk and in exports.
FIELDS = (
    "post",
    "seq",
    "time",
    "clock",
    "kind",
    "who",
    "temp_c",
    "temp_raw_c",
    "screening",
    "fault",
    "ref",
    "photo",
    "data",
)


def utc_text(moment: datetime) -> str:
    """UTC with milliseconds, e.g. 2026-11-27T03:04:05.123Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


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
) -> dict[str, Any]:
    """A new event as the plain dict that is stored, exported and sent."""
    event: dict[str, Any] = {
        "post": post,
        "seq": seq,
        "time": utc_text(moment),
        "clock": clock,
        "kind": str(kind),
    }
    optional = {
        "who": who and str(who),
        "temp_c": temp_c,
        "temp_raw_c": temp_raw_c,
        "screening": screening and str(screening),
        "fault": fault,
        "ref": ref,
        "photo": photo or None,
        "data": data,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return event


def mask_nik(nik: object) -> str:
    """A NIK as shown anywhere (page, CSV, command line): only its last 4 digits; "" if none."""
    text = "" if nik is None else str(nik)
    return "*" * max(len(text) - 4, 0) + text[-4:]
