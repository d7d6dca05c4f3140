"""Time for events: UTC now, and whether the system clock is known to be synchronised.

A Pi without network time or an RTC can wake up after a power cut with a wrong clock;
each event records the clock's trust so that the district can tell. Seq never uses time.
The coordinator may set the time by hand (`set_to`): see `HandSet`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from edge.events import parse_time, utc_text
from edge.journal import atomic_write

log = logging.getLogger(__name__)

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5
HAND_SET_FILE = "clock_set.json"
JUMP_S = 2.0  # wall minus monotonic moving more than this: someone stepped the system clock
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# Event clock states: "synced" (network time), "manual" (set by the coordinator on the
# page: trusted, but less than network time), "unsynced" and "unknown" (not trusted).
MANUAL = "manual"


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


def boot_id() -> str:
    """This boot's id (a new one after every reboot); "" where the kernel does not say."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


@runtime_checkable
class SettableClock(Protocol):
    """A clock the coordinator can set from the page."""

    def now(self) -> datetime: ...

    def state(self) -> str: ...

    def set_to(self, moment: datetime) -> None: ...

    def set_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class HandSet:
    """The coordinator's setting: an offset over the system clock, valid in one boot only.

    The station runs as `posko`, which may not set the system clock; so the offset is kept
    in the data directory and added to the system clock's time. It is dropped when network
    time arrives (that is better), after a reboot or when the system clock is stepped
    (the offset no longer says how wrong the system clock is).
    """

    offset_s: float
    at: str  # the corrected UTC time when it was set (events.utc_text form)
    boot: str
    anchor_s: float  # wall minus monotonic time when it was set

    def holds(self, boot: str, wall: float, mono: float) -> bool:
        return boot == self.boot and abs((wall - mono) - self.anchor_s) <= JUMP_S


class SystemClock:
    """The real clock, plus the coordinator's setting when one holds; the kernel's trust
    state is re-read at most once a minute. `data_dir` keeps the setting across restarts."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        kernel: Callable[[], str] = kernel_clock_state,
        boot: Callable[[], str] = boot_id,
    ) -> None:
        self._state = "unknown"
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._wall, self._mono, self._kernel = wall, mono, kernel
        self._boot = boot()
        self._path = None if data_dir is None else Path(data_dir) / HAND_SET_FILE
        self._hand = self._load()

    def now(self) -> datetime:
        hand = self._valid_hand()
        shift = hand.offset_s if hand is not None else 0.0
        return datetime.fromtimestamp(self._wall() + shift, UTC)

    def monotonic(self) -> float:
        return self._mono()

    def state(self) -> str:
        with self._lock:
            if self._mono() - self._checked > 60:
                self._state = self._kernel()
                self._checked = self._mono()
            kernel = self._state
        if kernel == "synced":
            self._drop("network time arrived")
            return kernel
        return MANUAL if self._valid_hand() is not None else kernel

    def set_to(self, moment: datetime) -> None:
        """Take `moment` as the time now (the coordinator's device said so)."""
        wall, mono = self._wall(), self._mono()
        hand = HandSet(moment.timestamp() - wall, utc_text(moment), self._boot, wall - mono)
        with self._lock:
            self._hand = hand
        if self._path is not None:
            try:
                atomic_write(self._path, json.dumps(asdict(hand)).encode())
            except OSError as e:  # still right until a restart
                log.error("cannot keep the clock setting in %s: %s", self._path, e)
        log.warning("clock set by hand: %s (offset %+.1f s)", hand.at, hand.offset_s)

    def set_at(self) -> datetime | None:
        """When the coordinator set the time, while that setting holds."""
        hand = self._valid_hand()
        return None if hand is None else parse_time(hand.at)

    def _valid_hand(self) -> HandSet | None:
        with self._lock:
            hand = self._hand
        if hand is None or hand.holds(self._boot, self._wall(), self._mono()):
            return hand
        self._drop("the system clock jumped or the Pi restarted since it was set")
        return None

    def _drop(self, why: str) -> None:
        with self._lock:
            if self._hand is None:
                return
            self._hand = None
        log.warning("the clock set by hand is no longer used: %s", why)
        if self._path is not None:
            try:
                self._path.unlink(missing_ok=True)
            except OSError as e:
                log.error("cannot remove %s: %s", self._path, e)

    def _load(self) -> HandSet | None:
        if self._path is None:
            return None
        try:
            return HandSet(**json.loads(self._path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as e:
            log.warning("ignoring the clock setting in %s: %s", self._path, e)
            return None


class VirtualClock:
    """A clock that moves only when told to, for simulations and tests."""

    def __init__(self, start: datetime, state: str = "synced") -> None:
        self._now = start
        self._mono = 0.0
        self._state = state
        self._set: datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def state(self) -> str:
        return self._state

    def set_to(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment
            self._state = MANUAL
            self._set = moment

    def set_at(self) -> datetime | None:
        return self._set if self._state == MANUAL else None

    def jump(self, seconds: float, state: str = "unsynced") -> None:
        """The system clock stepped: the time moves and the trust is lost."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._state = state

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
