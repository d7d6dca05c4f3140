"""The admin's sessions, ended on the server: the signed cookie names the session epoch it
was opened in, and leaving admin (or setting a new PIN) starts a new epoch in the data
directory, so a cookie saved before then opens nothing any more, in any browser.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
from pathlib import Path

from web.overrides import write_private

log = logging.getLogger(__name__)

FILE = "admin_epoch"
TOKEN = re.compile(r"^[0-9a-f]{32}$")


class SessionEpoch:
    """The current epoch, kept in `DATA/admin_epoch`; read again whenever the file changes
    (`posko set-pin` renews it from another process)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILE
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime, size) of the file read
        self._epoch = ""
        self._in_memory = False  # the file could not be written: this process keeps its own

    def current(self) -> str:
        with self._lock:
            if self._in_memory:
                return self._epoch
            try:
                st = self.path.stat()
                seen = (st.st_ino, st.st_mtime_ns, st.st_size)
                if seen != self._seen:
                    text = self.path.read_text().strip()
                    if not TOKEN.match(text):
                        raise ValueError(f"{self.path} does not hold an epoch")
                    self._seen, self._epoch = seen, text
            except (OSError, ValueError) as e:
                if not isinstance(e, FileNotFoundError):
                    log.warning("admin sessions start over: %s", e)
                self._renew()
            return self._epoch

    def holds(self, epoch: object) -> bool:
        """Whether a session opened in `epoch` is still open."""
        return isinstance(epoch, str) and hmac.compare_digest(epoch, self.current())

    def renew(self) -> None:
        """End every admin session opened so far."""
        with self._lock:
            self._renew()

    def _renew(self) -> None:
        self._epoch = secrets.token_hex(16)
        self._seen = None
        try:
            write_private(self.path, self._epoch.encode())
            st = self.path.stat()
            self._seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            self._in_memory = False
        except OSError as e:  # a new epoch in memory still ends the sessions of this process
            log.error("cannot keep the admin session epoch in %s: %s", self.path, e)
            self._in_memory = True
