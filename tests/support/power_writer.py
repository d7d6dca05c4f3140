"""The power-cut test's writer: appends events until it is killed, stamping each acknowledgement.

    python tests/support/power_writer.py DATA_DIR [SEED]

Prints "opening", then one line per event, `<CLOCK_MONOTONIC seconds> <event JSON>`, only
after `append` returned (after fdatasync): the stamp says when the event was acknowledged,
on the clock the test reads when it cuts the power, so the test knows what the cut must keep.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from edge.events import Kind, Who, parse_time
from edge.store import EventStore

POST = "power"
ZONE = "Asia/Jakarta"
SEGMENT_MAX = 50  # small, so segments fill up (and roll) under the cuts too
START = datetime(2026, 1, 1, 1, tzinfo=UTC)
MAX_HOURS_BETWEEN = 0.25  # a day holds about 200 events: segments fill, and days roll too
MAX_PAUSE_S = 0.004  # between two presses: the disk is busy most of the time, not all of it


def main(data_dir: str, seed: int) -> None:
    rng = random.Random(seed)
    print("opening", flush=True)
    with EventStore(data_dir, POST, ZONE, segment_max=SEGMENT_MAX) as store:
        last = store.recent(1)
        moment = parse_time(last[0]["time"]) if last else START
        while True:
            moment += timedelta(hours=rng.uniform(0, MAX_HOURS_BETWEEN))
            event = store.append(
                Kind.IN,
                moment=moment,
                who=rng.choice(list(Who)),
                temp_c=round(rng.uniform(35.5, 38.5), 1),
                data={"n": rng.randrange(10**9)},
            )
            print(f"{time.monotonic():.6f} {json.dumps(event)}", flush=True)
            time.sleep(rng.uniform(0, MAX_PAUSE_S))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
