"""The district page and its CSV export, through Flask's test client."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from district.backends import open_storage
from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from edge import events as ev
from edge.events import Kind, Screening, Who
from sync import codec
from sync.batch import Batch
from sync.messages import status
from tests.support.district_client import csrf, district_client


# Minutes after the start of the page's day (Asia/Jakarta), so "today" never straddles midnight.
def today_start() -> datetime:
    """The start of today in Jakarta, when asked (a suite run may cross midnight)."""
    return datetime.now(ZoneInfo("Asia/Jakarta")).replace(hour=0, minute=0, second=0, microsecond=0)


def entry(post: str, seq: int, minute: float, **fields: Any) -> dict[str, Any]:
    moment = today_start() + timedelta(minutes=minute)
    return ev.make(post, seq, moment, Kind.IN, clock="synced", who=Who.RESIDENT, **fields)


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    db_path = tmp_path / "district.db"
    with SQLiteStorage(db_path) as db:
        receiver = Receiver(db)
        a = [
            entry("posko-a", 1, 1, temp_c=36.6, screening=Screening.NORMAL),
            entry("posko-a", 2, 2, temp_c=37.9, screening=Screening.RECHECK),
            ev.make(
                "posko-a",
                3,
                today_start() + timedelta(minutes=3),
                Kind.RECHECK,
                clock="synced",
                who=Who.RESIDENT,
                ref=2,
                temp_c=38.0,
                screening=Screening.REFUSED,
            ),
        ]
        receiver.handle("posko/v1/posko-a/events", codec.encode(Batch.of("posko-a", a)))
        receiver.handle(
            "posko/v1/posko-a/status",
            status("online", pending=4, last_seq=7, clock="synced", version="0.1.0"),
        )
        b = [entry("posko-b", 1, -5 * 24 * 60), entry("posko-b", 5, 4)]  # 2-4 still missing
        for event in b:
            receiver.handle("posko/v1/posko-b/events", codec.encode(Batch.of("posko-b", [event])))
        receiver.handle("posko/v1/posko-b/status", status("offline"))
        receiver.handle("posko/v1/<script>alert(1)</script>/events", b"junk")
        receiver.handle("posko/v1/posko-b/events", b"not a batch")
    return district_client(db_path, "viewer")


def test_district_page_shows_every_post_with_its_state_and_figures(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "posko-a" in page and "posko-b" in page
    assert "Daring" in page and "Luring" in page
    report = client.get("/api/posts").get_json()
    a, b = report["posts"]
    assert (a["state"], a["pending"], a["contiguous"]) == ("online", 4, 3)
    assert (a["today"]["in"], a["today"]["fevers"], a["today"]["refused"]) == (2, 1, 1)
    assert (b["state"], b["gaps"], b["missing"], b["rejected"]) == ("offline", [[2, 4]], 3, 1)
    assert report["rejected_total"] == 2 and report["rejected_unknown"] == 1


def test_district_page_escapes_what_posts_send(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_district_page_exports_csv_across_posts_for_a_range_of_days(client: FlaskClient) -> None:
    today = today_start().date()
    first = (today - timedelta(days=7)).isoformat()
    response = client.get(f"/export.csv?from={first}&to={(today + timedelta(days=1)).isoformat()}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["post"], r["seq"]) for r in rows] == [
        ("posko-a", "1"),
        ("posko-a", "2"),
        ("posko-a", "3"),
        ("posko-b", "1"),
        ("posko-b", "5"),
    ]
    old = client.get(f"/export.csv?from={first}&to={first}").get_data(as_text=True)
    assert old.count("\n") == 1  # the header only: nothing that long ago
    assert client.get("/export.csv?from=2026-02-02&to=2026-02-01").status_code == 400
    assert client.get("/export.csv?from=yesterday").status_code == 400


def test_district_page_refusals_speak_the_page_language_and_the_api_json(tmp_path: Path) -> None:
    db = tmp_path / "district.db"
    SQLiteStorage(db).close()
    client = district_client(db)
    page = client.get("/rekap?level=semua")
    assert page.status_code == 400 and "Permintaan tidak dapat diproses" in page.get_data(True)
    assert "Bad Request" not in page.get_data(True)  # not werkzeug's English page
    client.get("/lang/en")
    assert "Page not found" in client.get("/no/such/page").get_data(True)
    api = client.get("/api/rekap?level=semua")
    assert api.status_code == 400 and api.json is not None and "level" in api.json["error"]


def test_district_page_says_when_its_database_cannot_be_read(tmp_path: Path) -> None:
    db = tmp_path / "district.db"
    SQLiteStorage(db).close()
    client = district_client(db)
    db.write_bytes(b"not a database at all" * 100)  # the disk gave it back damaged
    page = client.get("/rekap")
    assert page.status_code == 503 and "Basis data kabupaten" in page.get_data(True)
    assert client.get("/api/posts").status_code == 503


def test_district_page_answers_on_each_backend(district_db: str) -> None:
    """A smoke test of every page over a few posts' days of events, on SQLite and on
    PostgreSQL: nothing answers an error."""
    with open_storage(district_db) as db:
        receiver = Receiver(db)
        for post in ("posko-a", "posko-b", "posko-c"):
            events = [
                entry(post, seq, minute, temp_c=36.6, screening=Screening.NORMAL)
                for seq, minute in enumerate((-2 * 24 * 60, -24 * 60, -60, 1, 2), 1)
            ]
            emergency = ev.make(
                post, 6, today_start() + timedelta(minutes=3), Kind.EMERGENCY, clock="synced"
            )
            payload = codec.encode(Batch.of(post, [*events, emergency]))
            assert receiver.handle(f"posko/v1/{post}/events", payload) is not None
            receiver.handle(f"posko/v1/{post}/status", status("online", pending=0))
    client = district_client(district_db, "operator")
    today = today_start().date()
    days = f"from={(today - timedelta(days=3)).isoformat()}&to={today.isoformat()}"
    for path in ("/", "/api/posts", "/posts/posko-a", "/rekap", "/api/emergencies"):
        assert client.get(path).status_code == 200, path
    export = client.get(f"/export.csv?{days}")
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") == 1 + 18
    for action, form in (("acknowledge", {}), ("handle", {"note": "Sudah ditangani warga"})):
        answer = client.post(
            f"/emergencies/posko-a/6/{action}", data={"csrf_token": csrf(client), **form}
        )
        assert answer.status_code == 303, action
    active = client.get("/api/emergencies").get_json()["active"]
    assert [e["post"] for e in active] == ["posko-b", "posko-c"]


def test_district_post_page_says_why_records_were_lost(
    district_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range lost by an older post (no reason) is kept through the upgrade to schema 5;
    a range a newer post declares purged comes with its reason; the post's page says both,
    in Indonesian and in English."""
    from district import migrations
    from edge.segments import Lost

    monkeypatch.setattr(migrations, "STEPS", migrations.STEPS[:1])  # a version 4 database
    monkeypatch.setattr(migrations, "LATEST", 4)
    events = [entry("posko-a", seq, 1 + seq) for seq in (1, 2, 5, 6)]
    with open_storage(district_db) as db:
        db.store_batch(Batch.of("posko-a", events[:2]))
        with db.transaction() as tx:  # type: ignore[attr-defined]
            # 3-4 lost, as the code of schema 4 kept it: no reason
            tx.execute("INSERT INTO lost VALUES (?, ?, ?, ?)", ("posko-a", 3, 4, "2026-11-30"))
    monkeypatch.undo()
    purged = Batch("posko-a", 7, 9, [], declared=(Lost(7, 9, "purged"),))
    with open_storage(district_db) as db:
        db.store_batch(Batch.of("posko-a", events[2:], first=5))
        db.store_batch(purged)
        assert [(r["first"], r["last"], r["reason"]) for r in db.lost_reasons("posko-a")] == [
            (3, 4, None),
            (7, 9, "purged"),
        ]
        assert db.contiguous("posko-a") == 9
    client = district_client(district_db, "viewer")
    page = client.get("/posts/posko-a").get_data(as_text=True)
    assert "Catatan yang hilang di posko" in page and "3–4" in page and "7–9" in page
    assert "tidak disebutkan" in page and "sudah dihapus di posko" in page
    client.get("/lang/en")
    page = client.get("/posts/posko-a").get_data(as_text=True)
    assert "deleted at the post after the district had acknowledged it" in page
