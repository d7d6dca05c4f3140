"""How events look on the page: local time, label, temperature, colour, masked NIK.

Pure functions from event dicts to plain values for the templates, which escape them.
Labels are catalog keys (`web/i18n/*.json`), never literal words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.clock import MANUAL
from edge.events import Event, Kind, is_handled, mask_nik, parse_time

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Network time, or a time the coordinator set on the page (weaker: the status chip says so).
TRUSTED_CLOCKS = ("synced", MANUAL)


@dataclass(frozen=True)
class Row:
    """One event as a line of the live list or the history table."""

    seq: int
    time: str  # local HH:MM:SS
    label: str  # catalog key, e.g. "event.in.resident"
    temp: str  # "36.6" or "" (templates write it with `|dec`: 36,6 in Indonesian)
    screening: str  # "normal", "recheck", "refused", "fault" or ""
    ref: int | None
    voided: bool
    trusted: bool  # the clock was synchronised when the event was made
    photo: bool
    kind: str
    who: str


def label_key(event: Event) -> str:
    kind = event["kind"]
    if kind in (Kind.IN, Kind.OUT, Kind.RECHECK) and event.get("who"):
        return f"event.{kind}.{event['who']}"
    if kind == Kind.NOTE and "referral" in (event.get("data") or {}):
        return "event.note.referral"
    if is_handled(event):
        return "event.handled"  # the note that closes an emergency
    return f"event.{kind}"


def local(moment: str | datetime, zone: ZoneInfo) -> datetime:
    when = parse_time(moment) if isinstance(moment, str) else moment
    return when.astimezone(zone)


def row(event: Event, zone: ZoneInfo, cancelled: set[int] | frozenset[int]) -> Row:
    temp = event.get("temp_c")
    return Row(
        seq=event["seq"],
        time=local(event["time"], zone).strftime("%H:%M:%S"),
        label=label_key(event),
        temp="" if temp is None else f"{temp:.1f}",
        screening=event.get("screening") or "",
        ref=event.get("ref"),
        voided=event["seq"] in cancelled,
        trusted=event.get("clock") in TRUSTED_CLOCKS,
        photo=bool(event.get("photo")),
        kind=event["kind"],
        who=event.get("who") or "",
    )


def masked_data(data: dict[str, Any] | None) -> dict[str, Any]:
    """Visitor details fit to show or export: the NIK masked."""
    shown = dict(data or {})
    if shown.get("nik"):
        shown["nik"] = mask_nik(str(shown["nik"]))
    return shown


def is_day(text: str) -> bool:
    """YYYY-MM-DD that is a real date."""
    if not DAY.match(text):
        return False
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True
