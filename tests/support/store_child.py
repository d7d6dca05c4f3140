"""Child processes for the store's tests: an owner that holds a data directory, and a
writer that hits a file-size limit (the way a full disk looks to one process).

    python tests/support/store_child.py hold DATA_DIR
    python tests/support/store_child.py fsize DATA_DIR LIMIT MOMENT
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from datetime import datetime
from pathlib import Path

from edge.events import Kind
from edge.store import EventStore
from sensors.errors import StoreUnavailable

POST = "posko-01"
ZONE = "Asia/Jakarta"
FAILED_APPENDS = 3


def hold(data_dir: str) -> None:
    """Own the data directory, store one event, and hold on until stdin closes."""
    with EventStore(data_dir, POST, ZONE) as store:
        store.append(Kind.NOTE, moment=datetime.now().astimezone(), data={"by": "hold"})
        print("ready", os.getpid(), flush=True)
        sys.stdin.read()


def fsize(data_dir: str, limit: int, moment: datetime) -> None:
    """Append under RLIMIT_FSIZE, then lift the limit and append again; report as JSON."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    errors: list[dict[str, object]] = []
    report: dict[str, object] = {"errors": errors}
    with EventStore(data_dir, POST, ZONE) as store:
        segment = sorted(Path(data_dir, "events").glob("*.jsonl"))[-1]
        report["size_before"] = segment.stat().st_size
        for _ in range(FAILED_APPENDS):
            try:
                store.append(Kind.IN, moment=moment)
            except StoreUnavailable as e:
                errors.append({"errno": e.errno, "message": str(e)})
        report["size_after_failures"] = segment.stat().st_size
        report["last_error"] = store.last_error
        report["health"] = store.health()
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        report["seq_after_lift"] = store.append(Kind.IN, moment=moment)["seq"]
        report["health_after_lift"] = store.health()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    command, directory, *rest = sys.argv[1:]
    if command == "hold":
        hold(directory)
    elif command == "fsize":
        fsize(directory, int(rest[0]), datetime.fromisoformat(rest[1]))
    else:
        sys.exit(f"unknown command {command}")
