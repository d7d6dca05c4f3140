"""A child process of a bench (a receiver, a station) whose output lines are collected as
they come, so that a bench can wait for one of them and read the rest when it stops."""

from __future__ import annotations

import subprocess
import threading
import time


class Child:
    """A child process whose stderr (or stdout) lines are collected as they come."""

    def __init__(self, args: list[str], stream: str = "stderr") -> None:
        pipe = {stream: subprocess.PIPE}
        self.process = subprocess.Popen(args, text=True, **pipe)  # type: ignore[call-overload]
        self.lines: list[str] = []
        self._stream = getattr(self.process, stream)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def wait_line(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.005)
        raise RuntimeError(f"no {text!r} from {self.process.args}: {''.join(self.lines)[-2000:]}")

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL after 20 s); what it wrote."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return "".join(self.lines)
