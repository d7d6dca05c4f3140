"""Darurat at the district: counted from the stored events (live or from a backlog), active
until handled here or at the post, escalation and silent posts with an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from district import emergencies as em
from district.backends import open_storage
from district.receiver import Receiver
from district.report import day_bounds
from district.storage import Storage
from edge import events as ev
from edge.events import Kind
from sync import codec
from sync.batch import Batch
from tests.support.district_client import csrf, district_app, district_client

ZONE = ZoneInfo("Asia/Jakarta")
MORNING = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 in Jakarta
RULES = em.Rules()


@pytest.fixture
def send(db: Storage) -> Callable[..., None]:
    receiver = Receiver(db)

    def deliver(post: str, events: list[ev.Event], leaf: str = "events") -> None:
        receiver.handle(f"posko/v1/{post}/{leaf}", codec.encode(Batch.of(post, events)))

    return deliver


def event(
    post: str, seq: int, minute: float, kind: Kind = Kind.EMERGENCY, **fields: Any
) -> ev.Event:
    return ev.make(post, seq, MORNING + timedelta(minutes=minute), kind, clock="synced", **fields)


def entries(post: str, seqs: range, minute: float = 0) -> list[ev.Event]:
    return [event(post, s, minute + s, Kind.IN, who=ev.Who.RESIDENT) for s in seqs]


def test_district_emergencies_counted_live_and_from_a_backlog(
    db: Storage, send: Callable[..., None]
) -> None:
    send("posko-a", [event("posko-a", 1, 1)], "alert")  # live, on the alert topic
    send("posko-b", [*entries("posko-b", range(1, 3)), event("posko-b", 3, 5)])  # backlog
    send("posko-b", [event("posko-b", 4, 60 * 24)])  # the next day
    send("posko-b", [event("posko-b", 5, 6, Kind.VOID, ref=3)])  # Batal of the first
    start, end = day_bounds("2026-11-27", "2026-11-28", ZONE)
    counts = em.per_day(db, start, end, ZONE)
    assert counts == {("posko-a", "2026-11-27"): 1, ("posko-b", "2026-11-28"): 1}
    assert [(e.post, e.seq) for e in em.active(db)] == [("posko-a", 1), ("posko-b", 4)]


def test_district_emergency_handled_by_the_posts_own_note(
    db: Storage, send: Callable[..., None]
) -> None:
    send("posko-a", [event("posko-a", 1, 1), event("posko-a", 2, 2)])
    send("posko-a", [event("posko-a", 3, 9, Kind.NOTE, **ev.handled(2))])
    send("posko-a", [event("posko-a", 4, 10)])  # a new one after the note stays active
    assert [e.seq for e in em.active(db)] == [4]
    history = em.between(db, post="posko-a")
    assert [(e.seq, e.active) for e in history] == [(1, False), (2, False), (4, True)]
    assert history[0].handled_at_post == event("posko-a", 3, 9)["time"]


def test_district_emergency_acknowledged_then_handled_by_an_operator(
    db: Storage, send: Callable[..., None]
) -> None:
    send("posko-a", [event("posko-a", 1, 1)], "alert")
    now = MORNING + timedelta(minutes=3)
    em.record(db, "posko-a", 1, em.ACKNOWLEDGED, "sari", now=now)
    (still,) = em.active(db)
    assert still.acknowledged == em.Action(em.ACKNOWLEDGED, ev.utc_text(now), "sari")
    with pytest.raises(em.EmergencyError, match="note"):
        em.record(db, "posko-a", 1, em.HANDLED, "sari", "  ", now=now)
    em.record(db, "posko-a", 1, em.HANDLED, "budi", "Ambulans datang", now=now)
    assert em.active(db) == []
    (done,) = em.between(db, post="posko-a")
    assert done.handled is not None and (done.handled.user, done.handled.note) == (
        "budi",
        "Ambulans datang",
    )
    with pytest.raises(em.EmergencyError, match="already"):
        em.record(db, "posko-a", 1, em.ACKNOWLEDGED, "sari", now=now)
    with pytest.raises(em.EmergencyError, match="no emergency"):
        em.record(db, "posko-a", 7, em.ACKNOWLEDGED, "sari", now=now)


def test_district_emergency_escalates_when_nobody_acknowledges_in_time(
    db: Storage, send: Callable[..., None]
) -> None:
    send("posko-a", [event("posko-a", 1, 1)], "alert")
    (alarm,) = em.active(db)
    arrived = ev.parse_time(alarm.received)
    assert alarm.state(arrived + timedelta(minutes=4, seconds=59), RULES) == "new"
    assert alarm.state(arrived + timedelta(minutes=5), RULES) == "escalated"
    assert alarm.state(arrived + timedelta(minutes=1), em.Rules(escalate_after_s=30)) == "escalated"
    em.record(db, "posko-a", 1, em.ACKNOWLEDGED, "sari", now=arrived + timedelta(minutes=7))
    (seen,) = em.active(db)
    assert seen.state(arrived + timedelta(hours=1), RULES) == "acknowledged"


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE)


def test_district_silence_counts_only_daytime_hours() -> None:
    assert em.daytime_s(at(9), at(11), ZONE, RULES) == 2 * 3600
    # Last heard at 21:30: half an hour of day, then the night does not count until 06:00.
    assert em.daytime_s(at(21, 30), at(5, 59, day=28), ZONE, RULES) == 30 * 60
    assert em.daytime_s(at(21, 30), at(7, 30, day=28), ZONE, RULES) == 2 * 3600
    assert em.daytime_s(at(11), at(9), ZONE, RULES) == 0


def test_district_silent_posts_are_flagged_after_the_setting() -> None:
    def seen(post: str, moment: datetime) -> dict[str, Any]:
        return {"post": post, "last_seen": ev.utc_text(moment)}

    posts = [seen("posko-a", at(8)), seen("posko-b", at(10, 30)), {"post": "posko-c"}]
    flagged = em.silent_posts(posts, at(11), ZONE, RULES)
    assert flagged == [{"post": "posko-a", "last_seen": posts[0]["last_seen"], "silent_s": 10800}]
    assert em.silent_posts(posts, at(11), ZONE, em.Rules(silent_after_s=1800)) == [
        flagged[0],
        {"post": "posko-b", "last_seen": posts[1]["last_seen"], "silent_s": 1800},
    ]
    assert em.silent_posts([seen("posko-a", at(21, 30))], at(3, day=28), ZONE, RULES) == []


# -- the page: /api/emergencies, acknowledge and handle, the post's history ---------------


@pytest.fixture
def page(district_db: str, send: Callable[..., None]) -> Flask:
    send("posko-a", [event("posko-a", 1, 1)], "alert")
    send("posko-b", [*entries("posko-b", range(1, 3)), event("posko-b", 3, 5)])  # backlog
    return district_app(district_db, zone="Asia/Jakarta")


def moved(app: Flask, moment: datetime) -> None:
    app.extensions["posko_emergencies"].now = lambda: moment


def test_district_api_lists_active_emergencies_and_escalates_them(page: Flask) -> None:
    client = district_client(page.extensions["posko_district"].db, "viewer", app=page)
    (a, b) = client.get("/api/emergencies").get_json()["active"]
    assert (a["post"], a["state"], b["post"], b["seq"]) == ("posko-a", "new", "posko-b", 3)
    assert b["local_time"].startswith("2026-11-27 08.05")  # WIB, another day than now
    later = ev.parse_time(b["received"]) + timedelta(minutes=7)
    moved(page, later)
    report = client.get("/api/emergencies").get_json()
    assert [(x["state"], x["waiting_min"]) for x in report["active"]] == [("escalated", 7)] * 2
    moved(page, later + timedelta(hours=3))
    assert {s["post"] for s in client.get("/api/emergencies").get_json()["silent"]} <= {
        "posko-a",
        "posko-b",
    }


def test_district_viewer_cannot_acknowledge_an_operator_can(page: Flask) -> None:
    path = page.extensions["posko_district"].db
    viewer = district_client(path, "viewer", app=page)
    refused = viewer.post(
        "/emergencies/posko-a/1/acknowledge",
        data={"csrf_token": csrf(viewer)},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 403
    operator = district_client(path, "operator", name="sari", app=page)
    without_token = operator.post("/emergencies/posko-a/1/acknowledge")
    assert without_token.status_code in (400, 403)
    done = operator.post(
        "/emergencies/posko-a/1/acknowledge",
        data={"csrf_token": csrf(operator), "next": "/posts/posko-a"},
    )
    assert (done.status_code, done.headers["Location"]) == (303, "/posts/posko-a")
    (a, _) = operator.get("/api/emergencies").get_json()["active"]
    assert (a["state"], a["acknowledged"]["user"]) == ("acknowledged", "sari")
    no_note = operator.post(
        "/emergencies/posko-a/1/handle",
        data={"csrf_token": csrf(operator), "note": ""},
        headers={"Accept": "application/json"},
    )
    assert no_note.status_code == 409
    operator.post(
        "/emergencies/posko-a/1/handle",
        data={"csrf_token": csrf(operator), "note": "Warga pingsan, dibawa ke puskesmas"},
    )
    assert [x["post"] for x in operator.get("/api/emergencies").get_json()["active"]] == ["posko-b"]
    history = operator.get("/posts/posko-a?day=2026-11-27").get_data(as_text=True)
    assert history.count("sari") >= 2 and "Warga pingsan, dibawa ke puskesmas" in history
    with open_storage(path, read_only=True) as db:
        actions = [
            r[0] for r in db.conn.execute("SELECT action FROM audit WHERE username = 'sari'")
        ]
    assert "emergency_acknowledged" in actions and "emergency_handled" in actions


def test_district_every_page_carries_the_banner_script(page: Flask) -> None:
    client = district_client(page.extensions["posko_district"].db, "viewer", app=page)
    for path in ("/", "/rekap", "/posts/posko-a"):
        html = client.get(path).get_data(as_text=True)
        assert 'id="darurat"' in html and "district.js" in html, path
    assert client.get("/static/district.js").status_code == 200
