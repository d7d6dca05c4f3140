"""Privacy at every end (issue 11): time moves through every deadline of every class on the
Pi and at the district (injected clocks, no sleeping) while every byte each side writes is
searched for what must be gone; a quiet post's details go on time; the running page forgets
what was purged; files set aside in damaged/ are purged and erased from too."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from district.receiver import Receiver
from district.retention import Retention as DistrictRetention
from district.sqlite import SQLiteStorage
from edge.clock import VirtualClock
from edge.config import Config
from edge.erasure import erase
from edge.events import Kind, Who
from edge.post import Post
from edge.retention import purge, purge_visitor_details
from edge.station import photo_path
from edge.store import EventStore
from posko import cli
from posko.runtime import Runtime
from sync import codec
from sync.batch import Batch
from sync.options import Link, SyncOptions
from sync.outbox import Outbox
from tests.support.web_support import Screen

POST = "test-post"
ZONE = "Asia/Jakarta"
DAY0 = date(2026, 8, 3)  # the visit
NAME, NIK, PHONE = "Wulan Kusumawardani", "3273015508910004", "0813 2244 6688"
CONTACT = "Bu Rohimah 0857 1100 2233"  # the refused person's referral contact
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x5a\xa5" * 64
SETTINGS = {
    "privacy.photo_days": 14,
    "privacy.visitor_days": 30,
    "privacy.synced_event_days": 90,
    "privacy.purge_interval_s": 3600,
}


def at(day: date, hour: int = 10) -> datetime:
    """`hour` o'clock in Jakarta on `day`."""
    return datetime(day.year, day.month, day.day, hour - 7, tzinfo=UTC)


def pi_bytes(data_dir: Path) -> bytes:
    """Every byte the Pi wrote under its data directory."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def district_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def visit(store: EventStore) -> None:
    """A visitor with a photo and details; a refused resident with a referral."""
    entry = store.append(Kind.IN, moment=at(DAY0), who=Who.VISITOR, photo=True)
    path = photo_path(store.data_dir, entry["seq"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(JPEG)
    details = {"name": NAME, "nik": NIK, "phone": PHONE, "origin": "Kota Cimahi"}
    store.append(Kind.VISITOR, moment=at(DAY0), ref=entry["seq"], data=details)
    refused = store.append(Kind.IN, moment=at(DAY0, 11), who=Who.RESIDENT)
    store.append(
        Kind.NOTE,
        moment=at(DAY0, 12),
        ref=refused["seq"],
        data={"referral": "puskesmas", "contact": CONTACT},
    )


def sync_to(store: EventStore, receiver: Receiver, send_nik: bool) -> None:
    """What sync does, without a broker: the outbox's batches into the receiver, then the
    ack back into the store."""
    options = SyncOptions(POST, Link("127.0.0.1", 1883, "t"), send_nik=send_nik)
    for flight in Outbox(store, options).due():
        reply = receiver.handle(f"posko/v1/{POST}/events", flight.payload)
        assert reply is not None and b"error" not in reply.payload
    store.acknowledge(store.last_seq)


@pytest.mark.slow
def test_privacy_every_deadline_of_every_class_on_the_pi_and_at_the_district(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "pi"
    store = EventStore(data_dir, POST, ZONE)
    db = SQLiteStorage(tmp_path / "district.db")
    receiver = Receiver(db, keep=DistrictRetention())  # the defaults of docs/privacy.md
    try:
        visit(store)
        sync_to(store, receiver, send_nik=True)
        # A day file later, so that the visit's day is closed and can be dropped once synced.
        store.append(Kind.OUT, moment=at(DAY0 + timedelta(days=1)), who=Who.RESIDENT)
        sync_to(store, receiver, send_nik=True)
        db_path = db.path

        def walk(days: int) -> tuple[bytes, bytes]:
            today = DAY0 + timedelta(days=days)
            purge(store, SETTINGS, today.isoformat(), lambda data: None)
            receiver.purge(lambda: at(today, 12))
            return pi_bytes(data_dir), district_bytes(db_path)

        pi, district = walk(13)
        assert JPEG in pi and NAME.encode() in pi and NIK.encode() in district
        pi, district = walk(15)  # photos (Pi, 14 days); NIK (district, 14 days)
        assert JPEG not in pi and NIK.encode() in pi
        assert NIK.encode() not in district and NAME.encode() in district
        pi, district = walk(29)
        for text in (NAME, PHONE, CONTACT):
            assert text.encode() in pi and text.encode() in district, text
        pi, district = walk(31)  # visitor details and referral contacts, both sides
        for text in (NAME, NIK, PHONE, CONTACT):
            assert text.encode() not in pi + district, text
        assert b"Kota Cimahi" not in pi + district
        assert store.get(1) is not None  # the events themselves stay
        assert db.count(POST) == 5
        walk(89)
        assert store.get(1) is not None
        walk(91)  # synced events leave the Pi (90 days); the district keeps them
        assert store.get(1) is None and db.count(POST) == 5
        walk(364)
        assert db.count(POST) == 5
        walk(367)  # whole events leave the district (365 days)
        assert db.count(POST) == 0
        classes = [(r["action"], r["class"]) for r in reversed(db.privacy_log())]
        assert classes == [
            ("purge", "nik"),
            ("purge", "visitor_details"),
            ("purge", "events"),
        ]
    finally:
        store.close()
        db.close()


def test_privacy_a_quiet_posts_details_go_at_the_first_round_after_the_deadline(
    config: Config, clock: VirtualClock, open_post: Callable[..., Post], capsys: Any
) -> None:
    data_dir = Path(config["data.dir"])
    today = clock.now().astimezone(UTC).date()
    with EventStore(data_dir, config["post.id"], ZONE) as store:
        entry = store.append(Kind.IN, moment=at(today - timedelta(days=31)), who=Who.VISITOR)
        details = {"name": NAME, "nik": NIK}
        store.append(
            Kind.VISITOR, moment=at(today - timedelta(days=31)), ref=entry["seq"], data=details
        )
    # No press since: the visit's day file is still the one being written to.
    post = open_post()
    with Runtime(config, post=post, page=False).start():
        pass  # the round at start-up
    assert NAME.encode() not in pi_bytes(data_dir) and NIK.encode() not in pi_bytes(data_dir)
    post.close()
    capsys.readouterr()
    assert cli.main(["--data", str(data_dir), "privacy", "find", "--nik", NIK]) == 0
    assert NAME not in capsys.readouterr().out


def test_privacy_the_running_page_forgets_purged_details_and_never_restores_a_nik(
    open_post: Callable[..., Post],
) -> None:
    screen = Screen(open_post([36.6]))
    assert screen.press("masuk_pendatang").status_code == 200  # seq 1
    screen.post_form("/visitors/1", {"name": NAME, "origin": "Kota Cimahi", "nik": NIK,
                                     "phone": PHONE})  # fmt: skip
    assert NAME in screen.text("/visitors") and NAME in screen.text("/visitors/1")
    store = screen.post.store
    tomorrow = date.fromisoformat(store.today(datetime.now(UTC))) + timedelta(days=1)
    assert purge_visitor_details(store, tomorrow.isoformat()) == 1  # the page keeps running
    for path in ("/visitors", "/visitors/1", "/report"):
        text = screen.text(path)
        assert NAME not in text and PHONE not in text and "*0004" not in text, path
    # "Leave the NIK empty to keep it" must not bring back the purged one.
    response = screen.post_form("/visitors/1", {"name": "Tamu", "origin": "Bandung", "nik": ""})
    assert response.status_code == 302
    newest = store.get(store.last_seq)
    assert newest is not None and newest["kind"] == Kind.VISITOR
    assert "nik" not in newest["data"] and NIK.encode() not in pi_bytes(store.data_dir)


@pytest.fixture
def damaged(tmp_path: Path) -> Iterator[EventStore]:
    """A store with a visit, and two files in damaged/ holding copies of its details."""
    store = EventStore(tmp_path / "pi", POST, ZONE)
    visit(store)
    store.damaged_dir.mkdir(parents=True, exist_ok=True)
    line = b'0 {"kind":"visitor","data":{"name":"%s","nik":"%s"}}\n' % (NAME.encode(), NIK.encode())
    other = b'0 {"kind":"visitor","data":{"name":"Someone Else"}}\n'
    first = store.damaged_dir / f"1_{DAY0.isoformat()}.jsonl.corrupt-20260803T120000"
    first.write_bytes(line + other + b"\x00\xff torn")
    set_aside = store.damaged_dir / "settings.json.corrupt-20260901T080000"
    set_aside.write_bytes(b'{"note": "%s"}' % NIK.encode())
    yield store
    store.close()


def test_privacy_files_set_aside_in_damaged_are_kept_no_longer_than_visitor_details(
    damaged: EventStore,
) -> None:
    names = sorted(p.name for p in damaged.damaged_dir.iterdir())
    done = purge(damaged, SETTINGS, (DAY0 + timedelta(days=29)).isoformat(), lambda d: None)
    assert done["damaged_files"] == 0
    done = purge(damaged, SETTINGS, (DAY0 + timedelta(days=31)).isoformat(), lambda d: None)
    assert done["damaged_files"] == 1  # the segment of DAY0; the settings copy is newer
    assert sorted(p.name for p in damaged.damaged_dir.iterdir()) == names[1:]
    os.utime(damaged.damaged_dir / names[1], (0, 0))  # its name's date wins over mtime
    purge(damaged, SETTINGS, "2026-09-30", lambda d: None)
    assert len(list(damaged.damaged_dir.iterdir())) == 1
    purge(damaged, SETTINGS, "2026-10-02", lambda d: None)
    assert list(damaged.damaged_dir.iterdir()) == []


def test_privacy_an_erasure_reaches_the_files_set_aside_in_damaged(damaged: EventStore) -> None:
    result = erase(damaged, [2], at(DAY0 + timedelta(days=2)))
    assert result["seqs"] == [2] and result["damaged_lines"] == 2
    held = pi_bytes(damaged.data_dir)
    assert NAME.encode() not in held and NIK.encode() not in held
    assert b"Someone Else" in held  # other people's lines stay for the technician
    note = damaged.get(result["event"])
    assert note is not None and note["data"]["erasure"]["damaged_lines"] == 2


def test_privacy_an_erasure_takes_the_referral_contact_of_the_same_entry(tmp_path: Path) -> None:
    with EventStore(tmp_path / "pi", POST, ZONE) as store:
        entry = store.append(Kind.IN, moment=at(DAY0), who=Who.VISITOR)
        store.append(Kind.VISITOR, moment=at(DAY0), ref=entry["seq"], data={"name": NAME})
        store.append(
            Kind.NOTE, moment=at(DAY0), ref=entry["seq"],
            data={"referral": "home", "contact": CONTACT},
        )  # fmt: skip
        with SQLiteStorage(tmp_path / "district.db") as db:
            receiver = Receiver(db)

            def send(events: list[Any]) -> None:
                reply = receiver.handle(
                    f"posko/v1/{POST}/events", codec.encode(Batch.of(POST, events))
                )
                assert reply is not None and b"error" not in reply.payload

            send(store.since(0))
            assert CONTACT.encode() in district_bytes(db.path)
            result = erase(store, [2], at(DAY0 + timedelta(days=1)))
            assert result["seqs"] == [2, 3]
            assert CONTACT.encode() not in pi_bytes(store.data_dir)
            note = store.get(result["event"])
            assert note is not None
            send([note])  # the district redacts what the note lists: the referral too
            assert CONTACT.encode() not in district_bytes(db.path)
            assert NAME.encode() not in district_bytes(db.path)
