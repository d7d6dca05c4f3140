"""Time for events: UTC now, and whether the system clock is known to be synchronised.

A Pi without network time or an RTC can wake up after a power cut with a wrong clock;
each event records the clock's trust so that the district can tell. Seq never uses time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

log = logging.getLogger(__name__)

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: modes, then longs; 256 bytes of room is plenty.
    _fields_ = [("modes", ctypes.c_uint), ("rest", ctypes.c_byte * 252)]


def kernel_clock_state() -> str:
    """'synced' or 'unsynced' as the kernel's NTP discipline says, 'unknown' if it cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        result = libc.adjtimex(ctypes.byref(_Timex()))
    except (OSError, AttributeError):
        return "unknown"
    if result < 0:
        return "unknown"
    return "unsynced" if result == _TIME_ERROR else "synced"


class SystemClock:
    """The real clock; the trust state is re-read at most once a minute."""

    def __init__(self) -> None:
        self._state = "unknown"
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def state(self) -> str:
        with self._lock:
            if time.monotonic() - self._checked > 60:
                self._state = kernel_clock_state()
                self._checked = time.monotonic()
            return self._state


class VirtualClock:
    """A clock that moves only when told to, for simulations and tests."""

    def __init__(self, start: datetime, state: str = "synced") -> None:
        self._now = start
        self._mono = 0.0
        self._state = state
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def state(self) -> str:
        return self._state

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
