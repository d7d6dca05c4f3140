"""The admin PIN: set at install with `posko set-pin`, never a default, locked after misses.

The PIN is kept as a salted scrypt hash in `DATA/admin_pin.json` (mode 0600). After
`MAX_MISSES` wrong PINs in a row the page refuses every PIN for a while, doubling each time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from web.overrides import write_private

log = logging.getLogger(__name__)

FILE = "admin_pin.json"
PIN_PATTERN = re.compile(r"^[0-9]{6,12}$")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_MISSES = 5
LOCK_S = 300.0  # first lockout; doubles on each further lockout, up to LOCK_MAX_S
LOCK_MAX_S = 3600.0


class PinError(ValueError):
    """A PIN that cannot be set (wrong shape)."""


def pin_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE


def _hash(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20, dklen=32)


def set_pin(data_dir: str | Path, pin: str) -> None:
    """Store a new PIN (6 to 12 digits) as a salted hash."""
    if not PIN_PATTERN.match(pin):
        raise PinError("the PIN must be 6 to 12 digits")
    salt = secrets.token_bytes(16)
    record = {
        "algo": "scrypt",
        **SCRYPT,
        "salt": salt.hex(),
        "hash": _hash(pin, salt, **SCRYPT).hex(),
    }
    write_private(pin_path(data_dir), json.dumps(record).encode())


@dataclass
class Verdict:
    ok: bool
    reason: str = ""  # "", "no_pin", "locked", "wrong"
    locked_s: float = 0.0  # seconds of lockout left


class AdminPin:
    """Checks PINs against the stored hash, with a lockout shared by every browser."""

    def __init__(
        self, data_dir: str | Path, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = pin_path(data_dir)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._misses = 0
        self._lockouts = 0
        self._locked_until = 0.0

    @property
    def is_set(self) -> bool:
        return self.path.exists()

    def locked_for(self) -> float:
        return max(self._locked_until - self._monotonic(), 0.0)

    def check(self, pin: str) -> Verdict:
        with self._lock:
            left = self.locked_for()
            if left > 0:
                return Verdict(False, "locked", left)
            record = self._read()
            if record is None:
                return Verdict(False, "no_pin")
            if self._matches(pin, record):
                self._misses = 0
                return Verdict(True)
            return self._miss()

    def _miss(self) -> Verdict:
        self._misses += 1
        log.warning("wrong admin PIN (%d in a row)", self._misses)
        if self._misses < MAX_MISSES:
            return Verdict(False, "wrong")
        lock = min(LOCK_S * 2**self._lockouts, LOCK_MAX_S)
        self._lockouts += 1
        self._misses = 0
        self._locked_until = self._monotonic() + lock
        log.warning("admin PIN locked for %.0f s after %d wrong PINs", lock, MAX_MISSES)
        return Verdict(False, "locked", lock)

    def _read(self) -> dict[str, object] | None:
        try:
            record = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.error("%s is unreadable; set the PIN again with `posko set-pin`", self.path)
            return None
        return record if isinstance(record, dict) else None

    @staticmethod
    def _matches(pin: str, record: dict[str, object]) -> bool:
        if len(pin) > 64 or record.get("algo") != "scrypt":
            return False
        try:
            salt = bytes.fromhex(str(record["salt"]))
            expected = bytes.fromhex(str(record["hash"]))
            cost = {k: int(str(record[k])) for k in ("n", "r", "p")}
        except (KeyError, ValueError):
            return False
        return hmac.compare_digest(_hash(pin, salt, **cost), expected)
