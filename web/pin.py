"""The admin PIN: set at install with `posko set-pin`, never a default, locked after misses.

The PIN is kept as a salted scrypt hash in `DATA/admin_pin.json` (mode 0600). After
`MAX_MISSES` wrong PINs in a row the page refuses every PIN for a while, doubling each time;
the count and the lockout are kept in `DATA/admin_pin_lock.json`, so a restart buys nothing.
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
from dataclasses import asdict, dataclass
from pathlib import Path

from web.overrides import write_private
from web.sessions import SessionEpoch

log = logging.getLogger(__name__)

FILE = "admin_pin.json"
LOCK_FILE = "admin_pin_lock.json"
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
    """Store a new PIN (6 to 12 digits) as a salted hash. The technician who sets it ends
    the lockout of the old one and every admin session opened with it."""
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
    Path(data_dir, LOCK_FILE).unlink(missing_ok=True)
    SessionEpoch(data_dir).renew()


@dataclass
class Verdict:
    ok: bool
    reason: str = ""  # "", "no_pin", "unreadable", "locked", "wrong"
    locked_s: float = 0.0  # seconds of lockout left


@dataclass(frozen=True)
class Tally:
    """Wrong PINs in a row, lockouts so far, and the current lockout (wall-clock time)."""

    misses: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    lock_s: float = 0.0  # the lockout's length: a clock set back cannot make it longer

    def left(self, now: float) -> float:
        return max(min(self.locked_until - now, self.lock_s), 0.0)


class AdminPin:
    """Checks PINs against the stored hash, with a lockout shared by every browser and kept
    across restarts. `clock` is wall-clock time (the lockout must outlive the process)."""

    def __init__(self, data_dir: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = pin_path(data_dir)
        self.lock_path = Path(data_dir) / LOCK_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: Tally | None = None  # the tally, while the file cannot be written

    @property
    def is_set(self) -> bool:
        return self.path.exists()

    def state(self) -> str:
        """One of "unset", "unreadable" (the station cannot read the file) and "set"."""
        if not self.path.exists():
            return "unset"
        return "set" if self._read() is not None else "unreadable"

    def locked_for(self) -> float:
        with self._lock:
            return self._tally().left(self._clock())

    def check(self, pin: str) -> Verdict:
        with self._lock:
            tally = self._tally()
            left = tally.left(self._clock())
            if left > 0:
                return Verdict(False, "locked", left)
            record = self._read()
            if record is None:
                return Verdict(False, "unreadable" if self.path.exists() else "no_pin")
            if self._matches(pin, record):
                if tally.misses:
                    self._save(Tally(lockouts=tally.lockouts))
                return Verdict(True)
            return self._miss(tally)

    def _miss(self, tally: Tally) -> Verdict:
        misses = tally.misses + 1
        log.warning("wrong admin PIN (%d in a row)", misses)
        if misses < MAX_MISSES:
            self._save(Tally(misses, tally.lockouts))
            return Verdict(False, "wrong")
        lock = min(LOCK_S * 2**tally.lockouts, LOCK_MAX_S)
        self._save(Tally(0, tally.lockouts + 1, self._clock() + lock, lock))
        log.warning("admin PIN locked for %.0f s after %d wrong PINs", lock, MAX_MISSES)
        return Verdict(False, "locked", lock)

    def _tally(self) -> Tally:
        if self._kept is not None:
            return self._kept
        try:
            data = json.loads(self.lock_path.read_bytes())
            return Tally(
                int(data["misses"]),
                int(data["lockouts"]),
                float(data["locked_until"]),
                float(data["lock_s"]),
            )
        except FileNotFoundError:
            return Tally()
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.error("%s is unreadable (%s); counting wrong PINs afresh", self.lock_path, e)
            return Tally()

    def _save(self, tally: Tally) -> None:
        try:
            write_private(self.lock_path, json.dumps(asdict(tally)).encode())
            self._kept = None
        except OSError as e:  # counted in memory then: a restart would forget it
            log.error("cannot keep the PIN lockout in %s: %s", self.lock_path, e)
            self._kept = tally

    def _read(self) -> dict[str, object] | None:
        try:
            record = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.error(
                "%s is unreadable (%s); set the PIN again with `sudo -u posko posko set-pin`",
                self.path,
                e.strerror if isinstance(e, OSError) else e,
            )
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
