"""The daily rekap per post, desa and kecamatan (page, CSV, JSON, A4 print, 14-day trend)
and a post's refusals with their referrals, through the logged-in page."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from district.receiver import Receiver
from district.registry import ExpectedPost, Registry
from district.sqlite import SQLiteStorage
from edge import events as ev
from edge.events import Kind, Screening, Who
from sync import codec
from sync.batch import Batch
from tests.support.district_client import district_client

ZONE = ZoneInfo("Asia/Jakarta")
DAY = "2026-11-27"
MORNING = datetime(2026, 11, 27, 8, 0, tzinfo=ZONE)
REGISTRY = Registry(
    name="Kabupaten Pesawaran",
    code="18.09",
    kecamatan={"18.09.01": "Gedong Tataan"},
    desa={"18.09.01.2001": "Sukaraja", "18.09.01.2002": "Bagelen"},
    posts={
        "posko-a": ExpectedPost("posko-a", "Posko Sukaraja 1", "18.09.01.2001"),
        "posko-b": ExpectedPost("posko-b", "=Posko Sukaraja 2", "18.09.01.2001"),
        "posko-c": ExpectedPost("posko-c", "Posko Bagelen", "18.09.01.2002"),
    },
)


def make(post: str, seq: int, minute: float, kind: Kind, **fields: Any) -> ev.Event:
    return ev.make(post, seq, MORNING + timedelta(minutes=minute), kind, clock="synced", **fields)


def day_of(post: str) -> list[ev.Event]:
    """Two residents in (one with a fever, refused on the second reading, then referred),
    a visitor who stays inside, one who leaves, a sensor fault, an emergency."""
    return [
        make(post, 1, 1, Kind.IN, who=Who.RESIDENT, temp_c=36.6, screening=Screening.NORMAL),
        make(post, 2, 2, Kind.IN, who=Who.RESIDENT, temp_c=37.9, screening=Screening.RECHECK),
        make(
            post,
            3,
            8,
            Kind.RECHECK,
            who=Who.RESIDENT,
            ref=2,
            temp_c=38.1,
            screening=Screening.REFUSED,
        ),
        make(post, 4, 9, Kind.NOTE, ref=2, data={"referral": "puskesmas", "contact": "0812"}),
        make(post, 5, 10, Kind.IN, who=Who.VISITOR, temp_c=36.5, screening=Screening.NORMAL),
        make(post, 6, 11, Kind.IN, who=Who.VISITOR, temp_c=36.4, screening=Screening.NORMAL),
        make(post, 7, 12, Kind.OUT, who=Who.VISITOR, ref=6),
        make(post, 8, 13, Kind.IN, who=Who.RESIDENT, screening=Screening.FAULT, fault="i2c"),
        make(post, 9, 14, Kind.EMERGENCY),
        make(post, 10, 15, Kind.OUT, who=Who.RESIDENT),
    ]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "district.db"
    with SQLiteStorage(path) as storage:
        receiver = Receiver(storage)
        for post in ("posko-a", "posko-b"):
            events = day_of(post)
            receiver.handle(f"posko/v1/{post}/events", codec.encode(Batch.of(post, events)))
        early = [make("posko-c", 1, -3 * 24 * 60, Kind.IN, who=Who.RESIDENT)]  # 3 days ago
        receiver.handle("posko/v1/posko-c/events", codec.encode(Batch.of("posko-c", early)))
    return path


@pytest.fixture
def client(db: Path) -> FlaskClient:
    return district_client(db, "viewer", registry=REGISTRY, zone="Asia/Jakarta")


def test_district_rekap_per_post_desa_and_kecamatan(client: FlaskClient) -> None:
    posts = client.get(f"/api/rekap?day={DAY}&level=post").get_json()
    a = next(r for r in posts["rows"] if r["code"] == "posko-a")
    figures = {k: a[k] for k in ("in", "out", "fevers", "refused", "emergencies")}
    assert figures == {"in": 5, "out": 2, "fevers": 1, "refused": 1, "emergencies": 1}
    assert (a["sensor_faults"], a["visitors_inside"]) == (1, 1)
    assert {r["code"]: r["in"] for r in posts["rows"]} == {"posko-a": 5, "posko-b": 5, "posko-c": 0}
    desa = client.get(f"/api/rekap?day={DAY}&level=desa").get_json()
    assert [(r["name"], r["posts"], r["in"], r["refused"]) for r in desa["rows"]] == [
        ("Bagelen", 1, 0, 0),
        ("Sukaraja", 2, 10, 2),
    ]
    kecamatan = client.get(f"/api/rekap?day={DAY}&level=kecamatan").get_json()
    (gedong,) = kecamatan["rows"]
    assert (gedong["name"], gedong["posts"], gedong["emergencies"]) == ("Gedong Tataan", 3, 2)
    assert kecamatan["total"]["visitors_inside"] == 2
    trend = kecamatan["trend"]["18.09.01"]
    assert len(trend) == 14 and trend[-1]["day"] == DAY and trend[-4]["in"] == 1


def test_district_rekap_page_prints_on_a4_with_a_trend_chart(client: FlaskClient) -> None:
    page = client.get(f"/rekap?day={DAY}&level=desa").get_data(as_text=True)
    assert "Rekap harian 2026-11-27" in page and "Sukaraja" in page and "Bagelen" in page
    assert page.count("<svg") == 3  # the whole district and each desa
    assert page.count('class="bar-in"') == 3 * 14
    style = client.get("/static/district.css").get_data(as_text=True)
    assert "@page { size: A4" in style
    client.set_cookie("lang", "en")
    english = client.get(f"/rekap?day={DAY}&level=kecamatan")
    assert "Daily rekap 2026-11-27" in english.get_data(as_text=True)


def test_district_rekap_csv_defuses_formulas(client: FlaskClient) -> None:
    answer = client.get(f"/rekap.csv?day={DAY}&level=post")
    assert answer.mimetype == "text/csv"
    assert "posko-rekap-2026-11-27-post.csv" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    b = next(r for r in rows if r["code"] == "posko-b")
    assert b["name"] == "'=Posko Sukaraja 2" and b["in"] == "5"
    assert rows[-1]["name"] == "total" and rows[-1]["in"] == "10"


@pytest.mark.parametrize("query", ["day=2026-13-01", "day=kemarin", "level=rt", "day=0001-01-02"])
def test_district_rekap_refuses_bad_queries(client: FlaskClient, query: str) -> None:
    assert client.get(f"/rekap?{query}").status_code == 400
    assert client.get(f"/api/rekap?{query}").status_code == 400


def test_district_post_history_shows_refusals_with_referral(client: FlaskClient) -> None:
    page = client.get(f"/posts/posko-a?day={DAY}").get_data(as_text=True)
    assert "Posko Sukaraja 1" in page and "Sukaraja" in page
    assert "37,9 °C" in page and "38,1 °C" in page  # both readings, decimal comma
    assert "Dirujuk ke puskesmas" in page
    assert "0812" not in page  # the referral's contact stays off the page
    assert client.get("/posts/posko-x").status_code == 404


def test_district_rekap_counts_one_post_in_the_singular(client: FlaskClient) -> None:
    """Bagelen has one post: "1 post" in English, never "1 posts"; Sukaraja's two stay plural."""
    client.get("/lang/en")
    page = client.get(f"/rekap?day={DAY}&level=desa").get_data(as_text=True)
    assert "1 post<" in page and "2 posts<" in page
    assert "1 posts" not in page
