"""Posts in their regions: the registry file, the post's name and region in its status, the
overview grouped kecamatan -> desa -> post with totals, its filters, and what each post row
tells the officer (through the logged-in page and `/api/posts`, `/api/regions`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from district import uplink
from district.receiver import Receiver
from district.registry import load
from district.sqlite import SQLiteStorage
from edge import events as ev
from edge.config import load as load_config
from edge.events import Kind, Screening, Who, utc_text
from edge.store import EventStore
from sensors.errors import ConfigError
from sync import codec
from sync.batch import Batch, PayloadError
from sync.messages import parse_status, status
from sync.worker import SyncWorker
from tests.support.district_client import district_client
from tests.support.sync_helpers import POST, backlog, options

EXAMPLE = Path(__file__).resolve().parent.parent / "district" / "regions" / "pesawaran.toml"


def today_start() -> datetime:
    """The start of today in Jakarta, when asked (a suite run may cross midnight)."""
    return datetime.now(ZoneInfo("Asia/Jakarta")).replace(hour=0, minute=0, second=0, microsecond=0)


def event(post: str, seq: int, kind: Kind = Kind.IN, **fields: Any) -> dict[str, Any]:
    moment = today_start() + timedelta(minutes=seq)
    return ev.make(post, seq, moment, kind, clock="synced", who=Who.RESIDENT, **fields)


def send(receiver: Receiver, post: str, events: list[dict[str, Any]]) -> None:
    receiver.handle(f"posko/v1/{post}/events", codec.encode(Batch.of(post, events)))


def ago(minutes: float) -> str:
    """`minutes` before now (now when the data is made: a suite run takes minutes)."""
    return utc_text(datetime.now(UTC) - timedelta(minutes=minutes))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "district.db"
    with SQLiteStorage(path) as db:
        receiver = Receiver(db)
        fever = {"temp_c": 38.1, "screening": Screening.RECHECK}
        send(
            receiver, "bagelen-rw01", [event("bagelen-rw01", 1), event("bagelen-rw01", 2, **fever)]
        )
        send(receiver, "bagelen-rw01", [event("bagelen-rw01", 3, Kind.EMERGENCY)])
        receiver.handle(
            "posko/v1/bagelen-rw01/status",
            status("online", time=ago(1), since=ago(12), pending=0, last_seq=3, clock="synced",
                   version="0.2.0", disk_free=3_500_000_000, name="RW 01", region="18.09.01.2001"),
        )  # fmt: skip
        send(receiver, "wiyono-rw03", [event("wiyono-rw03", 1), event("wiyono-rw03", 2)])
        receiver.handle(
            "posko/v1/wiyono-rw03/status",
            status("online", time=ago(2), since=ago(90), pending=4, last_seq=6,
                   oldest=ago(45), clock="unsynced", version="0.2.0"),
        )  # fmt: skip
        send(receiver, "liar-post", [event("liar-post", 1)])
        receiver.handle(
            "posko/v1/liar-post/status",
            status("offline", time=ago(30), name="Posko Liar", region="18.09.99.9999"),
        )
        send(receiver, "cipadang-pasar", [event("cipadang-pasar", 1)])  # retired
    return path


@pytest.fixture
def client(db_path: Path) -> FlaskClient:
    return district_client(db_path, "viewer", registry=load(EXAMPLE))


def test_registry_example_names_the_kecamatan_of_pesawaran() -> None:
    registry = load(EXAMPLE)
    assert registry.name == "Kabupaten Pesawaran" and registry.code == "18.09"
    assert registry.kecamatan["18.09.01"] == "Gedong Tataan"
    assert len(registry.kecamatan) == 11 and "Way Ratai" in registry.kecamatan.values()
    assert all(code.startswith("18.09.") for code in registry.desa)


def test_registry_lists_every_problem_of_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[district]\ncode = "18"\n[kecamatan]\n"18.09" = "x"\n'
        '[[post]]\nid = "Bad Id"\n[[post]]\nid = "ok"\nregion = "18.09.01"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(bad)
    text = str(caught.value)
    assert "PP.KK" in text and "kecamatan '18.09'" in text
    assert "no valid id" in text and "PP.KK.CC.DDDD" in text


def test_registry_place_flags_unknown_regions_and_unexpected_posts() -> None:
    registry = load(EXAMPLE)
    stranger = registry.place("stranger", "Posko X", "18.09.99.9999")
    assert not stranger.expected and not stranger.known_region and not stranger.hidden
    assert stranger.region == "18.09.99.9999" and stranger.name == "Posko X"
    known = registry.place("bagelen-rw01", "RW 01", "18.09.05.2001")  # the registry wins
    assert known.name == "Posko RW 01 Bagelen" and known.desa_name == "Bagelen"
    assert known.kecamatan_name == "Gedong Tataan"
    assert registry.place("cipadang-pasar").hidden and registry.place("hanura-lama").hidden
    assert registry.place("hanura-dusun2").formerly == ("hanura-lama",)


def test_post_region_setting_is_checked_with_words(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={"POSKO_POST_REGION": "18.9.1.2001"})
    assert "post.region" in str(caught.value) and "PP.KK.CC.DDDD" in str(caught.value)
    config = load_config(None, env={"POSKO_POST_REGION": "18.09.01.2001"})
    assert config.post.region == "18.09.01.2001"


@pytest.mark.parametrize(
    "field",
    [
        {"region": "18.09.01"},
        {"name": "x" * 81},
        {"name": "line\nbreak"},
        {"disk_free": -1},
        {"disk_free": True},
        {"oldest": "yesterday"},
        {"since": 5},
        {"version": ["0.1"]},
    ],
)
def test_status_refuses_bad_new_fields(field: dict[str, Any]) -> None:
    with pytest.raises(PayloadError):
        parse_status(status("online", **field))


def test_status_keeps_the_new_fields() -> None:
    fields = {"name": "Posko RW 01", "region": "18.09.01.2001", "since": ago(3),
              "oldest": ago(40), "disk_free": 2**34, "time": ago(1)}  # fmt: skip
    assert parse_status(status("online", **fields)).items() >= fields.items()


def test_overview_groups_kecamatan_desa_and_posts_with_totals(client: FlaskClient) -> None:
    doc = client.get("/api/regions").get_json()
    assert doc["district"]["name"] == "Kabupaten Pesawaran"
    gedong = next(k for k in doc["kecamatan"] if k["code"] == "18.09.01")
    assert gedong["name"] == "Gedong Tataan"
    assert gedong["totals"]["posts"] == 2 and gedong["totals"]["online"] == 2
    assert gedong["totals"]["in"] == 4 and gedong["totals"]["emergencies"] == 1
    bagelen = next(d for d in gedong["desa"] if d["code"] == "18.09.01.2001")
    assert bagelen["name"] == "Bagelen" and bagelen["totals"]["fevers"] == 1
    unknown = next(k for k in doc["kecamatan"] if k["code"] == "18.09.99")
    assert unknown["name"] is None and unknown["desa"][0]["posts"][0]["post"] == "liar-post"


def test_overview_hides_retired_posts_and_shows_expected_silent_ones(client: FlaskClient) -> None:
    doc = client.get("/api/posts").get_json()
    posts = {p["post"]: p for p in doc["posts"]}
    assert "cipadang-pasar" not in posts and doc["hidden"] == 1
    assert posts["hanura-dusun2"]["state"] == "never"
    assert posts["liar-post"]["expected"] is False and posts["liar-post"]["known_region"] is False
    page = client.get("/").get_data(as_text=True)
    assert "Posko Pasar Cipadang" not in page
    assert "tidak terdaftar" in page and "wilayah 18.09.99.9999 tidak dikenal" in page


def test_overview_row_tells_what_the_officer_needs(client: FlaskClient) -> None:
    posts = {p["post"]: p for p in client.get("/api/posts").get_json()["posts"]}
    rw01, rw03 = posts["bagelen-rw01"], posts["wiyono-rw03"]
    assert rw01["today"] == {"in": 2, "out": 0, "fevers": 1, "refused": 0, "emergencies": 1}
    assert rw01["disk_free"] == 3_500_000_000 and rw01["version"] == "0.2.0"
    assert rw01["clock_trusted"] is True and rw03["clock_trusted"] is False
    assert rw01["last_event"]["kind"] == "emergency" and rw01["last_event"]["seq"] == 3
    assert rw03["pending"] == 4 and 44 * 60 <= rw03["oldest_unsent_age_s"] <= 47 * 60
    page = client.get("/").get_data(as_text=True)
    assert "12 menit lalu" in page and "sisa disk 3,3 GB" in page
    assert "tertua 45 menit" in page and "jam belum tepat" in page
    client.get("/lang/en")
    english = client.get("/").get_data(as_text=True)
    assert "12 minutes ago" in english and "3.3 GB free" in english


@pytest.mark.parametrize(
    ("query", "posts"),
    [
        ("q=wiyono", ["wiyono-rw03"]),
        ("state=offline", ["liar-post"]),
        ("region=18.09.01", ["bagelen-rw01", "wiyono-rw03"]),
        ("region=18.09.01.2007", ["wiyono-rw03"]),
        ("state=never&sort=name", ["hanura-dusun2"]),
    ],
)
def test_overview_filters(client: FlaskClient, query: str, posts: list[str]) -> None:
    doc = client.get(f"/api/posts?{query}").get_json()
    assert [p["post"] for p in doc["posts"]] == posts


def test_overview_sorts_by_backlog(client: FlaskClient) -> None:
    doc = client.get("/api/posts?sort=pending").get_json()
    assert doc["posts"][0]["post"] == "wiyono-rw03"


@pytest.mark.parametrize(
    "query", ["state=gone", "region=18.9", "sort=evil", "q=" + "x" * 81, "region=18.09.01%0a"]
)
def test_overview_refuses_bad_parameters(client: FlaskClient, query: str) -> None:
    assert client.get(f"/api/posts?{query}").status_code == 400
    assert client.get(f"/?{query}").status_code == 400


def test_retained_status_replayed_keeps_last_seen(db_path: Path) -> None:
    retained = status("offline", time=ago(30))  # the broker replays it to every new receiver
    with SQLiteStorage(db_path) as db:
        Receiver(db).handle("posko/v1/ghost/status", retained)
        Receiver(db).handle("posko/v1/ghost/status", retained)
        seen = next(p for p in db.posts() if p["post"] == "ghost")["last_seen"]
    assert seen == ago(30)[:16] + seen[16:] and seen < ago(29)


def test_receiver_cut_off_makes_post_states_unknown(db_path: Path, client: FlaskClient) -> None:
    with SQLiteStorage(db_path) as db:
        uplink.record(db, "receiver-1", "127.0.0.1:1883", uplink.CUT, at=ago(12))
    doc = client.get("/api/posts").get_json()
    assert doc["link"]["state"] == "cut"
    assert {p["state"] for p in doc["posts"]} <= {"unknown", "never"}
    page = client.get("/").get_data(as_text=True)
    assert "PENERIMA TERPUTUS" in page and "12 menit lalu" in page
    assert 'class="state offline"' not in page and 'class="state online"' not in page


def test_pi_status_carries_name_region_disk_and_oldest_unsent(tmp_path: Path) -> None:
    backlog(tmp_path / "data", 20)
    with EventStore(tmp_path / "data", POST) as store:
        chosen = options("127.0.0.1:1", name="Posko RW 01", region="18.09.01.2001")
        said = parse_status(SyncWorker(store, chosen).status())
        first = store.since(0, limit=1)[0]["time"]
    assert (said["name"], said["region"], said["pending"]) == ("Posko RW 01", "18.09.01.2001", 20)
    assert said["oldest"] == first and said["disk_free"] > 0
