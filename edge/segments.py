"""What the store knows of one closed day segment without reading it, and how it is named.

A segment is one journal file `events/<first seq>_<day>.jsonl`; the index (`index.json`)
keeps a `Segment` for each closed one so that opening a year of history rescans nothing,
and the seqs the store lost (`Lost`), each with its reason, so that sync declares exactly those.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge import events as ev
from edge.journal import atomic_write

log = logging.getLogger(__name__)

INDEX_VERSION = 1

# Rewrites the events of one segment: the new list, or None to leave it as it is.
Edit = Callable[[list[ev.Event]], list[ev.Event] | None]

# Why the store no longer holds a seq (docs/protocol.md, "Seqs the Pi lost").
LOST_REASONS = {
    "corrupt": "a damaged line of a corrupt journal",
    "torn": "a record cut by a crash or power cut while it was written",
    "purged": "deleted after the district acknowledged it",
    "missing": "not found when the store was opened (a journal removed by hand?)",
}


@dataclass(frozen=True)
class Lost:
    """Seqs first..last that the store gave out but no longer holds, and why."""

    first: int
    last: int
    reason: str

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def add_lost(recorded: list[Lost], new: list[Lost]) -> list[Lost]:
    """`recorded` plus the seqs of `new` it does not already cover (a seq keeps the reason it
    was first recorded with), sorted, with touching ranges of one reason joined."""
    out = list(recorded)
    for item in new:
        start = item.first
        for old in sorted(out, key=lambda r: r.first):
            if old.last < start or old.first > item.last:
                continue
            if old.first > start:
                out.append(Lost(start, old.first - 1, item.reason))
            start = max(start, old.last + 1)
        if start <= item.last:
            out.append(Lost(start, item.last, item.reason))
    joined: list[Lost] = []
    for item in sorted(out, key=lambda r: r.first):
        if joined and joined[-1].reason == item.reason and joined[-1].last + 1 == item.first:
            joined[-1] = Lost(joined[-1].first, item.last, item.reason)
        else:
            joined.append(item)
    return joined


def lost_of(index: dict[str, Any]) -> list[Lost]:
    """The lost seqs an index recorded (well-formed entries only)."""
    found = []
    for item in index.get("lost", []):
        if (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item[:2])
            and 1 <= item[0] <= item[1]
            and item[2] in LOST_REASONS
        ):
            found.append(Lost(*item))
    return add_lost([], found)


@dataclass
class Segment:
    """What the index knows of one closed segment, so it need not be read to be found."""

    file: str
    first: int
    last: int
    count: int
    min_day: str
    max_day: str
    size: int


def segment_name(first_seq: int, day: str) -> str:
    return f"{first_seq:012d}_{day}.jsonl"


def describe(path: Path, docs: list[ev.Event], zone: ZoneInfo) -> Segment:
    first = int(path.name.split("_", 1)[0])
    days = [ev.local_day(d["time"], zone) for d in docs] or [path.stem.split("_", 1)[1]]
    return Segment(
        path.name,
        first,
        max((d["seq"] for d in docs), default=first - 1),
        len(docs),
        min(days),
        max(days),
        path.stat().st_size,
    )


def load_index(events_dir: Path) -> dict[str, Any]:
    """The index of the closed segments, or {} when it is missing or unreadable."""
    path = events_dir / "index.json"
    try:
        data = json.loads(path.read_bytes())
        if isinstance(data, dict) and data.get("version") == INDEX_VERSION:
            return data
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        pass
    log.warning("%s is unreadable; rebuilding it from the segments", path)
    return {}


def write_index(
    events_dir: Path, seq_floor: int, closed: list[Segment], lost: list[Lost] | None = None
) -> None:
    data = {
        "version": INDEX_VERSION,
        "seq_floor": seq_floor,
        "segments": [asdict(s) for s in closed],
        "lost": [[r.first, r.last, r.reason] for r in lost or []],
    }
    atomic_write(events_dir / "index.json", json.dumps(data, indent=0).encode())
