"""Events out as CSV (for a spreadsheet at the puskesmas) or JSON lines (for machines).

Both are written oldest first and streamed, so a year of events never sits in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from edge.events import FIELDS, Event, parse_time

CSV_COLUMNS = ("post", "seq", "time", "local_time", *FIELDS[3:])


def csv_row(event: Event, zone: ZoneInfo) -> list[Any]:
    local = parse_time(event["time"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    row = {**event, "local_time": local}
    if "data" in event:
        row["data"] = json.dumps(event["data"], ensure_ascii=False, sort_keys=True)
    return ["" if row.get(c) is None else row[c] for c in CSV_COLUMNS]


def write_csv(events: Iterable[Event], out: TextIO, zone: ZoneInfo) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event, zone))
        count += 1
    return count


def write_jsonl(events: Iterable[Event], out: TextIO, zone: ZoneInfo) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        count += 1
    return count
