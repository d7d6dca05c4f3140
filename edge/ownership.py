"""One process owns a data directory: an exclusive lock on `posko.pid` that names it.

The kernel drops the lock when the owner dies, even by SIGKILL or a power cut, so a
stale file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sensors.errors import DataDirBusy


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "posko.pid"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = int(owner) if owner.isascii() and owner.isdigit() else None
            raise DataDirBusy(str(self.path.parent), pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.close()
