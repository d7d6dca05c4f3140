"""A Python child process for the store's tests, with its output read by threads.

A test waits for the child's lines with a deadline (never a bare sleep), kills it with
SIGKILL and then sees every whole line it printed before it died.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = ROOT / "tests" / "support"


class Child:
    """`python <script> <args>` with stdin open and stdout/stderr read in the background."""

    def __init__(self, script: str | Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []  # whole lines (with their newline) received so far
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self._eof = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _take(self, timeout: float | None) -> bool:
        """Move one line from the reader into `lines`; False at end of output."""
        line = self._queue.get(timeout=timeout)
        if line is None:
            self._eof = True
            return False
        if line.endswith("\n"):  # a line cut by a kill was never fully printed
            self.lines.append(line)
        return True

    def wait_lines(self, count: int, timeout: float) -> bool:
        """Wait until `count` whole lines arrived; False if the child's output ended first."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            if self._eof:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.lines)} of {count} lines after {timeout} s")
            try:
                if not self._take(remaining):
                    return False
            except queue.Empty:
                raise TimeoutError(
                    f"{len(self.lines)} of {count} lines after {timeout} s"
                ) from None
        return True

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._eof:
            self._take(max(deadline - time.monotonic(), 0.001))
        for reader in self._readers:
            reader.join(max(deadline - time.monotonic(), 0.001))

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL the child, reap it, and collect every whole line it printed."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)
        self._drain(timeout)
        self._close_pipes()

    def finish(self, timeout: float = 20) -> int:
        """Close the child's stdin, wait for it to exit, collect its output; its exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout)
        self._drain(timeout)
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
