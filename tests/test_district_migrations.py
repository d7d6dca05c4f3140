"""The district database's schema steps (`district.migrations`) on SQLite and PostgreSQL
alike: each step once, a failed step leaves the database as it was, a database newer than
the code is refused, and the two backends' schemas are the same tables and columns."""

from __future__ import annotations

from typing import Any

import pytest

from district import migrations
from district.backends import open_storage
from district.migrations import Step
from district.postgres import dialect
from district.storage import StorageError


def history(db: Any) -> list[tuple[int, str]]:
    rows = db.conn.execute("SELECT version, name FROM schema_history ORDER BY version")
    return [(int(v), str(n)) for v, n in rows.fetchall()]


def tables(db: Any, backend: str) -> dict[str, set[str]]:
    if backend == "sqlite":
        names = [n for (n,) in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: {row[1] for row in db.conn.execute(f"PRAGMA table_info({name})")}
            for name in names
        }
    found: dict[str, set[str]] = {}
    for table, column in db.conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    ):
        found.setdefault(table, set()).add(column)
    return found


def backend_of(db: str) -> str:
    return "postgres" if db.startswith("postgresql://") else "sqlite"


def test_district_migrations_a_new_database_records_each_step_once(district_db: str) -> None:
    with open_storage(district_db) as db:
        assert history(db) == [(step.version, step.name) for step in migrations.STEPS]
    with open_storage(district_db) as db:  # opened again: nothing applied twice
        assert history(db) == [(step.version, step.name) for step in migrations.STEPS]
        assert db.count() == 0


def test_district_migrations_a_later_step_reaches_an_existing_database(
    district_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_storage(district_db) as db:
        db.record_status("posko-a", {"state": "online"})
    step = Step(migrations.LATEST + 1, "a test table", "CREATE TABLE later (x INTEGER NOT NULL)")
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, step))
    monkeypatch.setattr(migrations, "LATEST", step.version)
    with open_storage(district_db) as db:
        assert history(db)[-1] == (step.version, "a test table")
        db.conn.execute("SELECT x FROM later").fetchall()
        assert [p["post"] for p in db.posts()] == ["posko-a"]  # the data stayed


def test_district_migrations_a_failed_step_changes_nothing(
    district_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_storage(district_db).close()
    bad = Step(
        migrations.LATEST + 1,
        "half a step",
        "CREATE TABLE half (x INTEGER);\nCREATE TABLE half (x INTEGER)",  # the second fails
    )
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, bad))
    monkeypatch.setattr(migrations, "LATEST", bad.version)
    with pytest.raises(StorageError):
        open_storage(district_db)
    monkeypatch.undo()
    with open_storage(district_db) as db:
        assert history(db)[-1][0] == migrations.LATEST
        assert "half" not in tables(db, backend_of(district_db))


def test_district_migrations_a_newer_database_is_refused(
    district_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    newer = Step(migrations.LATEST + 1, "from a newer Posko", "CREATE TABLE newer (x INTEGER)")
    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, newer))
    monkeypatch.setattr(migrations, "LATEST", newer.version)
    open_storage(district_db).close()
    monkeypatch.undo()
    with pytest.raises(StorageError, match="newer than this Posko knows") as refused:
        open_storage(district_db)
    assert "upgrade Posko" in str(refused.value)


@pytest.mark.postgres
def test_district_migrations_both_backends_have_the_same_tables_and_columns(
    tmp_path: Any, postgres_url: str
) -> None:
    with open_storage(tmp_path / "district.db") as lite, open_storage(postgres_url) as pg:
        assert tables(lite, "sqlite") == tables(pg, "postgres")


def test_district_migrations_sqlite_dialect_reaches_postgres_unchanged_in_meaning() -> None:
    sql = "SELECT a FROM t INDEXED BY t_a WHERE b = ? AND c LIKE '%?x%' AND d = 'it''s ?'"
    assert dialect(sql, True) == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '%%?x%%' AND d = 'it''s ?'"
    )
    assert dialect("INSERT OR IGNORE INTO t VALUES (?)", True) == (
        "INSERT INTO t VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert dialect("SELECT 1 FROM t WHERE x LIKE '%a%'", False) == (
        "SELECT 1 FROM t WHERE x LIKE '%a%'"
    )
