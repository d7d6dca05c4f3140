"""`posko district export`'s work: every stored event of every post, by post and seq, as CSV
(with a header row) or JSON lines, for a range of local days or for all time. NIKs are
masked unless the operator asks for them (`show_nik`), which is logged.
"""

from __future__ import annotations

import getpass
import logging
from typing import TextIO
from zoneinfo import ZoneInfo

from district.backends import open_storage
from district.report import day_bounds
from edge.export import with_nik_masked, write_csv, write_jsonl

log = logging.getLogger(__name__)

WRITERS = {"csv": write_csv, "jsonl": write_jsonl}  # by --format


def export(
    db: str,
    out: TextIO,
    *,
    fmt: str,
    zone: ZoneInfo,
    days: tuple[str, str] | None = None,
    show_nik: bool = False,
) -> int:
    """Write the events of `days` (first, last: local days in `zone`), or all, to `out`;
    how many were written."""
    start, end = day_bounds(days[0], days[1], zone) if days else ("", "~")
    write = WRITERS[fmt]
    if show_nik:
        who = getpass.getuser()
        log.warning("exporting with full NIKs (--show-nik), by %s, days %s", who, days or "all")
    with open_storage(db, read_only=True) as storage:
        events = storage.events(start, end)
        return write(events if show_nik else map(with_nik_masked, events), out, zone)
