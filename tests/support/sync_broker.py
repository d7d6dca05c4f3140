"""The sync tests' broker (bench/broker.py, shared with the bench) and a poll with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.broker import Mosquitto
from bench.ports import free_port

__all__ = ["Mosquitto", "free_port", "wait_for"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)
