"""A real `posko run --mock` in a child process, for tests of what is refused alongside it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.ports import free_port

POSKO = [sys.executable, "-m", "posko.cli"]
TIMEOUT = 60


def clean_env() -> dict[str, str]:
    """The environment without POSKO_* variables, which the config would read."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}


@contextmanager
def running_station(data: Path) -> Iterator[subprocess.Popen[str]]:
    """A station on `data` with its page on a free port, yielded once it says it runs;
    stopped with SIGTERM (exit 0)."""
    station = subprocess.Popen(
        [*POSKO, "--data", str(data), "run", "--mock", "--web", f"127.0.0.1:{free_port()}"],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr = station.stderr
    assert stderr is not None

    def read() -> None:  # a thread, so that waiting for the station has a time limit
        for line in stderr:
            lines.put(line)
        lines.put(None)  # the station ended

    threading.Thread(target=read, daemon=True).start()
    said: list[str] = []
    try:
        while not said or "is running" not in said[-1]:
            line = lines.get(timeout=TIMEOUT)
            assert line is not None, f"the station ended before it ran: {''.join(said)}"
            said.append(line)
        yield station
    finally:
        station.send_signal(signal.SIGTERM)
        code = station.wait(TIMEOUT)
    assert code == 0  # SIGTERM is a clean stop
