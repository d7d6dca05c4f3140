"""What the store knows of one closed day segment without reading it, and how it is named.

A segment is one journal file `events/<first seq>_<day>.jsonl`; the index (`index.json`)
keeps a `Segment` for each closed one so that opening a year of history rescans nothing.
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


def write_index(events_dir: Path, seq_floor: int, closed: list[Segment]) -> None:
    data = {
        "version": INDEX_VERSION,
        "seq_floor": seq_floor,
        "segments": [asdict(s) for s in closed],
    }
    atomic_write(events_dir / "index.json", json.dumps(data, indent=0).encode())
