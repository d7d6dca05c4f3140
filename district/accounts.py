"""The district page's users: roles, scrypt password hashes, server-side sessions, lockouts
after repeated wrong passwords (per name and per client address, kept in the database so a
restart buys nothing) and the audit trail. Every function takes an `SQLHandle`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

from district.group_commit import now_text
from district.sqlite import storage_errors
from district.storage import SQLHandle, StorageError
from sensors.errors import PoskoError

log = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")  # each role holds the rights of those before it
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
MIN_PASSWORD, MAX_PASSWORD = 10, 1024


@dataclass(frozen=True)
class Cost:
    """scrypt's parameters, stored with each hash so that they can rise later."""

    n: int = 2**14
    r: int = 8
    p: int = 1


# N=2^14, r=8: 16 MiB per guess (a GPU or ASIC must hold that much for each guess in
# parallel) and ~60 ms per check here (measured, 2 cores): Percival's parameters for
# interactive logins, quick for an officer, and a flood of logins costs the attacker too.
COST = Cost()
_MAXMEM = 64 * 2**20

LOCK_AFTER_NAME = 5  # wrong passwords for one name within WINDOW_S
LOCK_AFTER_ADDRESS = 20  # wrong passwords from one client address within WINDOW_S (an office NAT)
WINDOW_S = 15 * 60.0
LOCK_S = 300.0  # first lockout; doubles with each further one, up to LOCK_MAX_S
LOCK_MAX_S = 3600.0

SESSION_IDLE_S = 12 * 3600.0  # a session unused this long has ended
SESSION_MAX_S = 24 * 3600.0  # and every session ends a day after login
TOUCH_S = 60.0  # "last used" is written at most this often per session


class AccountError(PoskoError, ValueError):
    """A user that cannot be added, changed or removed as asked (the message says why)."""


class LoginRefused(PoskoError):
    """A login refused: `reason` is "wrong" or "locked" (then `wait_s` is the time left)."""

    def __init__(self, reason: str, wait_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created: str = ""
    last_login: str | None = None

    def can(self, role: str) -> bool:
        """Whether this user holds `role`'s rights (an admin holds an operator's)."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Session:
    user: User
    seen: float  # when the session was last used (wall clock)


def as_handle(storage: object) -> SQLHandle:
    """A storage as the `SQLHandle` the accounts need (a storage without SQL has none)."""
    if not (hasattr(storage, "conn") and hasattr(storage, "transaction")):
        raise StorageError(f"{type(storage).__name__} cannot hold the district's users")
    return cast(SQLHandle, storage)  # checked just above


@contextmanager
def opened(db: str | Path) -> Iterator[SQLHandle]:
    """The district database `db` opened for writing (created with its tables if new)."""
    from district.backends import open_storage

    with open_storage(db) as storage:
        yield as_handle(storage)


# -- passwords ---------------------------------------------------------------------------


def hash_password(password: str, cost: Cost = COST) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost)
    return f"scrypt${cost.n}${cost.r}${cost.p}${salt.hex()}${digest.hex()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        cost = Cost(int(n), int(r), int(p))
        expected = bytes.fromhex(digest)
        found = _scrypt(password, bytes.fromhex(salt), cost)
    except ValueError:
        log.error("a stored password hash cannot be read; that user cannot log in")
        return False
    return algo == "scrypt" and hmac.compare_digest(found, expected)


def _scrypt(password: str, salt: bytes, cost: Cost) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=_MAXMEM, dklen=32
    )


@cache
def _decoy() -> str:
    """A hash checked for unknown names, so that they take as long as known ones."""
    return hash_password(secrets.token_hex(8))


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError(
            f"{name[:40]!r} is not a user name: 1 to 32 lower-case letters, digits, '.', "
            "'-' or '_', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


# -- users ---------------------------------------------------------------------------


def add_user(
    handle: SQLHandle, name: str, role: str, password: str, *, by: str | None = None,
    cost: Cost = COST,
) -> User:  # fmt: skip
    check_name(name)
    check_password(password)
    if role not in ROLES:
        raise AccountError(f"{role!r} is not a role; roles: {', '.join(ROLES)}")
    stored, now = hash_password(password, cost), now_text()
    with handle.transaction() as db:
        if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"a user {name!r} exists already")
        db.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, NULL)", (name, role, stored, now, now))
        _audit(db, by, "user_added", f"{name} ({role})")
    return User(name, role, now)


def remove_user(handle: SQLHandle, name: str, *, by: str | None = None) -> None:
    """Remove the user and end every session they hold."""
    with handle.transaction() as db:
        if not db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
            raise AccountError(f"there is no user {name[:40]!r}")
        ended = db.execute("DELETE FROM sessions WHERE username = ?", (name,)).rowcount
        _audit(db, by, "user_removed", f"{name}; {ended} session(s) ended")


def set_password(
    handle: SQLHandle, name: str, password: str, *, by: str | None = None, cost: Cost = COST
) -> None:
    """A new password: every session of the user ends, and their name's lockout too."""
    stored = hash_password(check_password(password), cost)
    with handle.transaction() as db:
        changed = db.execute(
            "UPDATE users SET password = ?, changed = ? WHERE name = ?", (stored, now_text(), name)
        )
        if not changed.rowcount:
            raise AccountError(f"there is no user {name[:40]!r}")
        db.execute("DELETE FROM sessions WHERE username = ?", (name,))
        db.execute("DELETE FROM login_failures WHERE key = ?", (_name_key(name),))
        _audit(db, by, "password_changed", name)


def users(handle: SQLHandle) -> list[User]:
    with storage_errors():
        rows = handle.conn.execute(
            "SELECT name, role, created, last_login FROM users ORDER BY name"
        ).fetchall()
    return [User(*row) for row in rows]


def has_users(handle: SQLHandle) -> bool:
    with storage_errors():
        return handle.conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


# -- logging in and sessions ------------------------------------------------------------


def log_in(
    handle: SQLHandle, name: str, password: str, address: str, *, now: float | None = None
) -> str:
    """Check the password and open a session: its token (for the cookie; only its hash is
    kept). Raises `LoginRefused` for a wrong password or a name or address locked out."""
    now = time.time() if now is None else now
    keys = [_address_key(address)] + ([_name_key(name)] if NAME.match(name) else [])
    if wait := _locked_for(handle, keys, now):
        raise LoginRefused("locked", wait)
    with storage_errors():
        row = handle.conn.execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
    fits = len(password) <= MAX_PASSWORD
    matches = password_matches(row[0] if row and fits else _decoy(), password[:MAX_PASSWORD])
    if not (row and fits and matches):
        locked = _count_failure(handle, keys, name, address, now)
        raise LoginRefused("locked" if locked else "wrong", locked)
    token = secrets.token_urlsafe(32)
    with handle.transaction() as db:
        db.execute(
            "DELETE FROM sessions WHERE seen < ? OR created < ?",
            (now - SESSION_IDLE_S, now - SESSION_MAX_S),
        )
        db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_digest(token), name, now, now))
        db.execute("UPDATE users SET last_login = ? WHERE name = ?", (now_text(), name))
        db.execute("DELETE FROM login_failures WHERE key = ?", (_name_key(name),))
        _audit(db, name, "login", f"from {address}")
    return token


def session(handle: SQLHandle, token: str, *, now: float | None = None) -> Session | None:
    """The open session whose cookie holds `token`, or None (unknown, ended, expired, or
    its user removed)."""
    now = time.time() if now is None else now
    with storage_errors():
        row = handle.conn.execute(
            "SELECT u.name, u.role, u.created, u.last_login, s.created, s.seen "
            "FROM sessions s JOIN users u ON u.name = s.username WHERE s.token_hash = ?",
            (_digest(token),),
        ).fetchone()
    if row is None or row[5] < now - SESSION_IDLE_S or row[4] < now - SESSION_MAX_S:
        return None
    return Session(User(*row[:4]), row[5])


def touch(handle: SQLHandle, token: str, *, now: float | None = None) -> None:
    """Note that the session is in use (its idle time starts again)."""
    with handle.transaction() as db:
        db.execute(
            "UPDATE sessions SET seen = ? WHERE token_hash = ?",
            (time.time() if now is None else now, _digest(token)),
        )


def log_out(handle: SQLHandle, token: str) -> None:
    with handle.transaction() as db:
        row = db.execute(
            "SELECT username FROM sessions WHERE token_hash = ?", (_digest(token),)
        ).fetchone()
        if row:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (_digest(token),))
            _audit(db, row[0], "logout", "")


def csrf_for(token: str) -> str:
    """The session's CSRF token: derived from the cookie's token, which a page on another
    site cannot read, so nothing more needs keeping."""
    return hashlib.sha256(b"posko-district-csrf:" + token.encode()).hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _name_key(name: str) -> str:
    return f"name:{name}"


def _address_key(address: str) -> str:
    return f"address:{address[:64]}"


def _locked_for(handle: SQLHandle, keys: list[str], now: float) -> float:
    marks = ", ".join("?" * len(keys))
    with storage_errors():
        (until,) = handle.conn.execute(
            f"SELECT coalesce(max(locked_until), 0) FROM login_failures WHERE key IN ({marks})",
            keys,
        ).fetchone()
    return max(0.0, float(until) - now)


def _count_failure(
    handle: SQLHandle, keys: list[str], name: str, address: str, now: float
) -> float:
    """Count one wrong password against each key; lock those past their limit. Returns
    the lockout this failure started (0: none)."""
    started = 0.0
    with handle.transaction() as db:
        for key in keys:
            db.execute(
                "INSERT INTO login_failures VALUES (?, 1, ?, 0, 0) ON CONFLICT (key) DO UPDATE "
                "SET failures = CASE WHEN login_failures.first < ? THEN 1 "
                "ELSE login_failures.failures + 1 END, first = CASE WHEN "
                "login_failures.first < ? THEN ? ELSE login_failures.first END",
                (key, now, now - WINDOW_S, now - WINDOW_S, now),
            )
            failures, lockouts = db.execute(
                "SELECT failures, lockouts FROM login_failures WHERE key = ?", (key,)
            ).fetchone()
            limit = LOCK_AFTER_NAME if key.startswith("name:") else LOCK_AFTER_ADDRESS
            if failures >= limit:
                lock_s = min(LOCK_S * 2**lockouts, LOCK_MAX_S)
                db.execute(
                    "UPDATE login_failures SET failures = 0, first = ?, locked_until = ?, "
                    "lockouts = lockouts + 1 WHERE key = ?",
                    (now, now + lock_s, key),
                )
                started = max(started, lock_s)
                _audit(db, None, "locked_out", f"{key} for {lock_s / 60:.0f} min")
        _audit(db, None, "login_failed", f"name {name[:40]!r} from {address[:64]}")
    return started


# -- the audit trail ---------------------------------------------------------------------


def audit(handle: SQLHandle | Any, user: str | None, action: str, detail: str = "") -> None:
    """Write one action to the audit table: `handle` is an `SQLHandle` (a transaction of
    its own) or the connection its `transaction()` gave (inside that transaction)."""
    if hasattr(handle, "transaction"):
        with handle.transaction() as db:
            _audit(db, user, action, detail)
    else:
        with storage_errors():
            _audit(handle, user, action, detail)


def _audit(db: Any, user: str | None, action: str, detail: str) -> None:
    db.execute(
        "INSERT INTO audit (at, username, action, detail) VALUES (?, ?, ?, ?)",
        (now_text(), user, action, detail),
    )


def audit_log(handle: SQLHandle, limit: int = 100) -> list[dict[str, Any]]:
    """The newest actions first: `at` (UTC), `user`, `action`, `detail`."""
    with storage_errors():
        rows = handle.conn.execute(
            "SELECT at, username, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [dict(zip(("at", "user", "action", "detail"), row, strict=True)) for row in rows]
