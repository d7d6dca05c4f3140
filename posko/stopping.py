"""Stop on SIGTERM or Ctrl-C without ever taking a lock inside a signal handler.

The handler only writes a byte to a self-pipe: a burst of signals (Ctrl-C pressed twice, a
service manager and `timeout` both signalling) can re-enter it at any bytecode and still
never block. The waiting thread reads the pipe and then sets an ordinary `threading.Event`
that other threads may wait on.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """Installs handlers for `signals` (main thread only); `wait()` until one arrives."""

    def __init__(self, signals: Iterable[int] = SIGNALS) -> None:
        self.signals = tuple(signals)
        self.event = threading.Event()  # set by the waiting thread, never by the handler
        self.signum: int | None = None  # the first signal received
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignal:
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        # A full pipe means the waiter is already woken; nothing else may happen here.
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")

    def request(self) -> None:
        """Ask to stop from code (a test, a fatal error): same path as a signal."""
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        """True once a stop was asked for; False when `timeout` passed first."""
        if self.event.is_set():
            return True
        # select is restarted after a handler ran (PEP 475); the handler's byte wakes it.
        ready, _, _ = select.select([self._read], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass
        self.event.set()
        return True

    def close(self) -> None:
        """Give the signals back to their previous handlers. Idempotent.

        Once a signal asked for the stop, its repeats are ignored instead for the rest of
        the process: the stop is under way, and a late one of a burst must not kill the
        process with its default action while it exits."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler if self.signum is None else signal.SIG_IGN)
        if self._read >= 0:
            os.close(self._read)
            os.close(self._write)
            self._read = self._write = -1

    def __enter__(self) -> StopSignal:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.close()
