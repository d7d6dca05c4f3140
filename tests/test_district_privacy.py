"""The district's own retention and erasure (UU PDP), on each backend: time moves through
every class's deadline with an injected clock (no sleeping); after each, what had to go is
gone (on SQLite from the bytes of the file and its write-ahead log; on PostgreSQL from the
rows, the table vacuumed), each purge is in the privacy log, the page shows it, and exports
mask NIKs unless asked otherwise."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from district.backends import open_storage
from district.receiver import Receiver
from district.retention import Retention
from district.sqlite import SQLiteStorage
from district.storage import Storage
from sync import codec
from sync.batch import Batch
from tests.support.district_client import district_client

POST = "rw-03"
EVENTS = f"posko/v1/{POST}/events"
NAME, PHONE, NIK = "Siti Nurhaliza Zubaedah", "081299887766", "3201234567890123"
ENTERED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # the visitor's entry


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def visit(first: int = 1) -> list[dict[str, Any]]:
    """A visitor's entry and details (name, phone, NIK), then a resident's entry."""
    at = stamp(ENTERED)
    base = {"post": POST, "time": at, "clock": "synced"}
    return [
        {**base, "seq": first, "kind": "in", "who": "visitor", "temp_c": 36.5,
         "temp_raw_c": 36.1, "screening": "normal"},
        {**base, "seq": first + 1, "kind": "visitor", "ref": first,
         "data": {"name": NAME, "phone": PHONE, "nik": NIK, "origin": "Kab. Bogor"}},
        {**base, "seq": first + 2, "kind": "in", "who": "resident", "temp_c": 36.7,
         "temp_raw_c": 36.3, "screening": "normal"},
    ]  # fmt: skip


def send(receiver: Receiver, events: list[dict[str, Any]]) -> None:
    reply = receiver.handle(EVENTS, codec.encode(Batch.of(POST, events)))  # type: ignore[arg-type]
    assert reply is not None and b"error" not in reply.payload


def on_disk(path: Path) -> bytes:
    """Every byte the database has on disk: the file, its write-ahead log, its journal."""
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()
    )


def holds(db: Storage, text: str) -> bool:
    """SQLite: anywhere in the file's bytes. PostgreSQL: in any event's or refused
    payload's row (its old row versions are the VACUUM's, checked by `vacuumed`)."""
    if isinstance(db, SQLiteStorage):
        return text.encode() in on_disk(db.path)
    like = f"%{text}%"
    rows = db.conn.execute(  # type: ignore[attr-defined]
        "SELECT (SELECT count(*) FROM events e WHERE e::text LIKE ?)"
        " + (SELECT count(*) FROM quarantine q WHERE position(convert_to(?, 'UTF8') IN"
        " q.payload) > 0 OR q::text LIKE ?)",
        (like, text, like),
    ).fetchone()
    return bool(rows[0])


def vacuumed(db: Storage) -> int:
    """How many times PostgreSQL vacuumed the events table (SQLite: 0)."""
    if isinstance(db, SQLiteStorage):
        return 0
    row = db.conn.execute(  # type: ignore[attr-defined]
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'events'"
    ).fetchone()
    return int(row[0])


def test_district_database_is_set_to_overwrite_what_it_frees(sqlite_db: SQLiteStorage) -> None:
    assert sqlite_db.conn.execute("PRAGMA secure_delete").fetchone() == (1,)


def test_district_retention_purges_each_class_at_its_deadline_and_no_copy_stays(
    db: Storage, district_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    keep = Retention(visitor_days=30, nik_days=14, events_days=365, quarantine_days=30)
    receiver = Receiver(db, keep=keep)
    send(receiver, visit())
    reader = open_storage(district_db, read_only=True)  # the page reads while the receiver runs
    try:

        def at(days: float) -> dict[str, int]:
            return receiver.purge(lambda: ENTERED + timedelta(days=days))

        assert holds(db, NIK) and holds(db, NAME)
        assert not any(at(13.9).values())
        assert at(14.01) == {"visitor_details": 0, "nik": 1, "events": 0, "quarantine": 0}
        assert not holds(db, NIK) and holds(db, NAME)
        assert reader.events().__next__()["seq"] == 1  # a reader is never disturbed
        assert not any(at(29.9).values())
        assert at(30.01)["visitor_details"] == 1
        assert not holds(db, NAME) and not holds(db, PHONE) and not holds(db, "Kab. Bogor")
        details = [e for e in db.events() if e["kind"] == "visitor"]
        assert details == [{**visit()[1], "data": {"purged": True}}]
        assert db.count(POST) == 3
        assert not any(at(364.9).values())
        assert at(365.01)["events"] == 3
        assert db.count() == 0 and db.contiguous(POST) == 3  # the watermark stays
    finally:
        reader.close()
    log = db.privacy_log()
    assert [(r["action"], r["class"], r["records"]) for r in reversed(log)] == [
        ("purge", "nik", 1),
        ("purge", "visitor_details", 1),
        ("purge", "events", 3),
    ]
    if isinstance(db, SQLiteStorage):
        assert Path(f"{db.path}-wal").stat().st_size == 0  # the log emptied after each purge
    else:  # the old row versions were vacuumed after each of the three purges
        assert vacuumed(db) >= 3
    assert "could not vacuum" not in caplog.text


def test_district_quarantine_retention_reaches_refused_payloads_holding_personal_data(
    db: Storage,
) -> None:
    receiver = Receiver(db, keep=Retention(quarantine_days=30))
    receiver.handle(EVENTS, f'{{"post": "{POST}", "name": "{NAME}"}}'.encode())
    assert db.quarantined() and holds(db, NAME)
    now = datetime.now(UTC)
    assert receiver.purge(lambda: now + timedelta(days=29))["quarantine"] == 0
    assert receiver.purge(lambda: now + timedelta(days=30, minutes=1))["quarantine"] == 1
    assert not holds(db, NAME)
    assert db.quarantine_counts() == {POST: 1}  # the count outlives the row


def test_district_erasure_reaches_the_database_its_log_and_the_quarantine(
    db: Storage, district_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(db)
    receiver.handle(EVENTS, f'{{"junk": "{NAME}"}}'.encode())  # a refused copy
    send(receiver, visit())
    reader = open_storage(district_db, read_only=True)
    try:
        assert holds(db, NAME) and holds(db, NIK)
        vacuums = vacuumed(db)
        note = {"post": POST, "seq": 4, "time": stamp(ENTERED + timedelta(days=2)),
                "clock": "synced", "kind": "note",
                "data": {"erasure": {"seqs": [2], "reason": "permintaan subjek data"}}}  # fmt: skip
        send(receiver, [note])
        for text in (NAME, NIK, PHONE):  # SQLite: in the main file, the WAL, anywhere
            assert not holds(db, text), text
        assert [e.get("data") for e in reader.events() if e["kind"] == "visitor"] == [
            {"purged": True}
        ]
        if not isinstance(db, SQLiteStorage):
            assert vacuumed(db) > vacuums
    finally:
        reader.close()
    assert db.quarantined() == []
    assert {(r["action"], r["class"]) for r in db.privacy_log()} == {
        ("erasure", "visitor_details"),
        ("erasure", "quarantine"),
    }
    assert "could not vacuum" not in caplog.text


def test_district_retention_settings_are_checked_in_words() -> None:
    assert Retention().problems() == []
    problems = Retention(visitor_days=0, nik_days=60).problems()
    assert "visitor_days must be a whole number of days from 1 to 3650, got 0" in problems
    assert any("NIK cannot be kept longer" in p for p in problems)


def test_district_page_shows_the_retention_and_the_privacy_log(
    db: Storage, district_db: str
) -> None:
    receiver = Receiver(db)
    send(receiver, visit())
    receiver.purge(lambda: ENTERED + timedelta(days=31))
    client = district_client(district_db, keep=Retention(visitor_days=21, nik_days=7))
    page = client.get("/").get_data(as_text=True)
    assert "rincian pendatang 21 hari, NIK 7 hari" in page
    assert "dihapus (retensi)" in page and "older than 2026-" in page


def district_export(db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posko.cli", "district", "export", "--db", str(db),
         "--format", "csv", *extra],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


@pytest.mark.slow
def test_district_exports_mask_niks_unless_the_operator_asks_and_that_is_logged(
    db: Storage, district_db: str
) -> None:
    send(Receiver(db), visit())
    day = ENTERED.date().isoformat()
    page = district_client(district_db).get(f"/export.csv?from={day}&to={day}")
    masked = district_export(district_db)
    for text in (page.get_data(as_text=True), masked.stdout):
        assert NIK not in text and "*" * 12 + NIK[-4:] in text  # masked: the last 4 digits
        assert NAME in text  # the details themselves are the export's purpose
    assert "NIK" not in masked.stderr
    shown = district_export(district_db, "--show-nik")
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert any(NIK in row["data"] for row in rows)
    assert "full NIKs (--show-nik)" in shown.stderr
