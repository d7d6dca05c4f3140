"""Events out as CSV (for a spreadsheet at the puskesmas) or JSON lines (for machines).

Both are written oldest first and streamed, so a year of events never sits in memory. An
export never stops half-way over one odd event: a time the zone's calendar cannot show gets
an empty `local_time`, a number JSON cannot hold (NaN, Infinity) is written as null, and
text a spreadsheet would run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

from edge.events import FIELDS, Event, mask_nik, parse_time

CSV_COLUMNS = ("post", "seq", "time", "local_time", *FIELDS[3:])
# What a spreadsheet takes for the start of a formula (OWASP's CSV injection list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_writer(out: TextIO) -> Any:
    """The CSV writer of every export. Rows end in CRLF (RFC 4180), so that a CR inside a
    value is quoted too: unquoted, a reader would start a new row there."""
    return csv.writer(out, lineterminator="\r\n")


def defuse(cell: Any) -> Any:
    """Text a spreadsheet would run as a formula, with a leading apostrophe."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_START) else cell


def local_time(time_text: str, zone: ZoneInfo) -> str:
    """The event's time on the post's clock, or "" where the calendar ends (year 9999)."""
    try:
        return parse_time(time_text).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, TypeError, AttributeError):
        return ""


def json_text(value: Any, *, sort_keys: bool = False) -> str:
    """Strict JSON (no NaN or Infinity, which readers refuse): such numbers become null."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def with_nik_masked(event: Event) -> Event:
    """The event with a visitor's NIK shown as its last 4 digits (how exports show it)."""
    data = event.get("data")
    if not isinstance(data, dict) or not data.get("nik"):
        return event
    return cast(Event, {**event, "data": {**data, "nik": mask_nik(data["nik"])}})


def csv_row(event: Event, zone: ZoneInfo) -> list[Any]:
    row: dict[str, Any] = {**event, "local_time": local_time(event["time"], zone)}
    if "data" in event:
        row["data"] = json_text(event["data"], sort_keys=True)
    for name in ("temp_c", "temp_raw_c"):
        if isinstance(row.get(name), float) and not math.isfinite(row[name]):
            row[name] = None
    return [defuse("" if row.get(c) is None else row[c]) for c in CSV_COLUMNS]


def write_csv(events: Iterable[Event], out: TextIO, zone: ZoneInfo) -> int:
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event, zone))
        count += 1
    return count


def write_jsonl(events: Iterable[Event], out: TextIO, zone: ZoneInfo) -> int:
    count = 0
    for event in events:
        out.write(json_text(event) + "\n")
        count += 1
    return count
