"""One exception tree for Posko, rooted at `PoskoError`.

Where a builtin fits, an error inherits it too (as gpiozero's `exc.py` does), so
callers can catch either the Posko class or the builtin.
"""

from __future__ import annotations


class PoskoError(Exception):
    """Base of every error Posko raises on purpose."""


class UsageError(PoskoError):
    """The command line asks for something that cannot be done (exit status 2)."""


class ConfigError(PoskoError, ValueError):
    """The configuration is invalid; `problems` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class StoreError(PoskoError):
    """Base of the store's errors."""


class StoreUnavailable(StoreError, OSError):
    """An event could not be made durable (disk full, read-only, I/O error)."""


class DataDirBusy(StoreError):
    """Another posko process owns the data directory."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"posko process {pid}" if pid else "another posko process"
        super().__init__(f"data directory {path} is in use by {who}; stop it first")


class AppendOnlyError(StoreError, TypeError):
    """Something tried to edit or delete an event; corrections are new events."""


class SensorError(PoskoError):
    """Base of the hardware layer's errors."""


class CameraError(SensorError):
    """The camera could not be opened or could not take a picture."""


class CameraBusy(CameraError):
    """The camera already has an owner in this process."""
