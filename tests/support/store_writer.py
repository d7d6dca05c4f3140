"""The crash test's writer: appends events until it is killed.

    python tests/support/store_writer.py DATA_DIR [SEED]

Prints "opening" before it opens the store, then each event as one JSON line, only after
`append` returned (the event is durable): what it printed is what it acknowledged.
`write` is also the power-cut test's writer (tests/support/power_writer.py).
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from edge.events import Kind, Who, parse_time
from edge.store import EventStore

SEGMENT_MAX = 50  # small, so segments fill up (and roll) under the kill too
START = datetime(2026, 1, 1, 1, tzinfo=UTC)


def write(
    data_dir: str,
    seed: int,
    *,
    post: str = "crash",
    max_hours_between: float = 3.0,  # the post's day changes every few events
    max_pause_s: float = 0.0,
    stamp: bool = False,
) -> None:
    """Append events for ever; print each once durable (after CLOCK_MONOTONIC with `stamp`)."""
    rng = random.Random(seed)
    print("opening", flush=True)
    with EventStore(data_dir, post, "Asia/Jakarta", segment_max=SEGMENT_MAX) as store:
        last = store.recent(1)
        moment = parse_time(last[0]["time"]) if last else START
        while True:
            moment += timedelta(hours=rng.uniform(0, max_hours_between))
            event = store.append(
                Kind.IN,
                moment=moment,
                who=rng.choice(list(Who)),
                temp_c=round(rng.uniform(35.5, 38.5), 1),
                data={"n": rng.randrange(10**9)},
            )
            line = json.dumps(event)
            print(f"{time.monotonic():.6f} {line}" if stamp else line, flush=True)
            if max_pause_s:
                time.sleep(rng.uniform(0, max_pause_s))


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
