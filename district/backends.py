"""The one place that turns a `--db` value into a `Storage`: a file path is SQLite (the
embedded default); a `postgresql://` address is refused until its backend exists.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from district.storage import Storage, UnsupportedStorage

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_storage(db: str | Path, *, read_only: bool = False, zone: str | None = None) -> Storage:
    """The storage `db` names; `read_only` opens an existing one only to read it; `zone`:
    of the days its daily figures count (`district.daily`; the default Asia/Jakarta)."""
    text = str(db)
    scheme = _SCHEME.match(text)
    # Name only the scheme in errors: the rest of an address may hold a password.
    if scheme and scheme[1].lower() in POSTGRES_SCHEMES:
        raise UnsupportedStorage(
            f"--db {scheme[0]}...: PostgreSQL storage is not supported yet; "
            "give the path of an SQLite database file"
        )
    if scheme:
        raise UnsupportedStorage(
            f"--db {scheme[0]}...: unknown kind of storage; "
            "give the path of an SQLite database file"
        )
    from district.sqlite import SQLiteStorage

    if zone is None:
        return SQLiteStorage(text, read_only=read_only)
    return SQLiteStorage(text, read_only=read_only, zone=zone)
