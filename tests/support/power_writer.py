"""The power-cut test's writer: appends events until it is killed, stamping each acknowledgement.

    python tests/support/power_writer.py DATA_DIR [SEED]

Prints "opening", then one line per event, `<CLOCK_MONOTONIC seconds> <event JSON>`, only
after `append` returned (after fdatasync): the stamp says when the event was acknowledged,
on the clock the test reads when it cuts the power, so the test knows what the cut must keep.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, beside its sibling

from store_writer import SEGMENT_MAX, START, write

POST = "power"
ZONE = "Asia/Jakarta"  # the store_writer's zone
__all__ = ["POST", "SEGMENT_MAX", "START", "ZONE"]

if __name__ == "__main__":
    write(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else 0,
        post=POST,
        max_hours_between=0.25,  # a day holds about 200 events: segments fill, days roll too
        max_pause_s=0.004,  # between two presses: the disk is busy most of the time, not all
        stamp=True,
    )
