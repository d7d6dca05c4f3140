"""The one place that turns a `--db` value into a `Storage`: a file path is SQLite (the
embedded default); a `postgresql://` address is PostgreSQL (docs/district.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from district.storage import SCHEME, Storage, UnsupportedStorage

log = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql", "postgres")
DB_HELP = (
    "the district database: an SQLite file, or a PostgreSQL address postgresql://USER@HOST/DB "
    "(keep its password in ~/.pgpass or PGPASSFILE, not in the address; docs/district.md)"
)


def open_storage(db: str | Path, *, read_only: bool = False, zone: str | None = None) -> Storage:
    """The storage `db` names; `read_only` opens an existing one only to read it; `zone`:
    of the days its daily figures count (`district.daily`; the default Asia/Jakarta)."""
    text = str(db)
    scheme = SCHEME.match(text)
    # Name only the scheme in errors: the rest of an address may hold a password.
    if scheme and scheme[1].lower() in POSTGRES_SCHEMES:
        try:
            from district.postgres import PostgresStorage
        except ImportError as e:  # the optional dependency: pip install 'posko[postgres]'
            raise UnsupportedStorage(
                f"--db {scheme[0]}...: PostgreSQL needs psycopg: pip install 'posko[postgres]'"
            ) from e
        if zone is None:
            return PostgresStorage(text, read_only=read_only)
        return PostgresStorage(text, read_only=read_only, zone=zone)
    if scheme:
        raise UnsupportedStorage(
            f"--db {scheme[0]}...: unknown kind of storage; give the path of an SQLite "
            "database file or a postgresql:// address"
        )
    from district.sqlite import SQLiteStorage

    if zone is None:
        return SQLiteStorage(text, read_only=read_only)
    return SQLiteStorage(text, read_only=read_only, zone=zone)
