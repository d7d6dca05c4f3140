"""The district's daily figures (`district.daily`): kept as batches arrive (out of order,
twice), they say for every day what the guard's day report (`edge.tally.summarize`) says
of the same events; they survive a purge and are rebuilt for an older database."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.store import day_events
from district import daily
from district.backends import open_storage
from district.sqlite import SQLiteStorage
from district.storage import Purge, Storage
from edge.events import Event, Kind, Screening, Who, local_day, make
from edge.tally import follows_visits, lookback_first
from sync.batch import Batch
from web.figures import compute

ZONE = ZoneInfo("Asia/Jakarta")
POST = "bench"


def history(seed: int, days: int, per_day: int) -> list[Event]:
    """A realistic history of one post: presses, re-checks, voids, visitors, faults, plus
    emergencies, departures and exits that name their visitor."""
    rng = random.Random(seed)
    found: list[Event] = []
    for n in range(days):
        day = date(2026, 9, 1) + timedelta(days=n)
        found.extend(day_events(rng, day, ZONE, len(found) + 1, per_day, None))  # type: ignore[arg-type]
    visitors = [e["seq"] for e in found if e["kind"] == Kind.IN and e.get("who") == Who.VISITOR]
    for e in found:
        r = rng.random()
        if e["kind"] == Kind.OUT and e.get("who") == Who.RESIDENT and r < 0.03:
            e["kind"] = str(Kind.EMERGENCY)
            del e["who"]
        elif e["kind"] == Kind.OUT and e.get("who") == Who.VISITOR and r < 0.5:
            earlier = [s for s in visitors if s < e["seq"]]
            if earlier:
                e["ref"] = rng.choice(earlier[-20:])
    return found


def expected(events: list[Event], zone: ZoneInfo = ZONE) -> dict[str, dict[str, int]]:
    """Each day's figures as the guard's day report computes them from the events."""
    by_day: dict[str, list[Event]] = defaultdict(list)
    for e in sorted(events, key=lambda e: e["seq"]):
        by_day[local_day(e["time"], zone)].append(e)
    found = {}
    for day, group in by_day.items():
        first = lookback_first(day)
        earlier = [
            e for d, es in by_day.items() if first <= d < day for e in es if follows_visits(e)
        ]
        figures = compute(day, group, zone, earlier)
        s = figures.summary
        screened = s["by_screening"]
        found[day] = {
            **{k: s[k] for k in ("in", "out", "in_resident", "in_visitor", "out_resident")},
            **{k: s[k] for k in ("out_visitor", "refused", "emergencies", "voided", "events")},
            "normal": screened["normal"],
            "fevers": screened["recheck"],
            "faults": screened["fault"],
            "sensor_faults": figures.faults,
            "visitors_inside": s["visitors_inside"],
            "visitors_waiting": s["visitors_waiting"],
        }
    return found


def kept(storage: Storage, post: str = POST) -> dict[str, dict[str, int]]:
    """Every day's figures of one post as the daily table holds them."""
    conn = storage.conn  # type: ignore[attr-defined]
    days = [d for (d,) in conn.execute("SELECT day FROM daily WHERE post = ?", (post,))]
    return {day: daily.day_figures(storage, day)[post] for day in sorted(days)}


def deliver(storage: Storage, events: list[Event], rng: random.Random) -> None:
    """The events in contiguous batches, in a shuffled order, a third of them twice."""
    batches, at = [], 0
    while at < len(events):
        size = rng.randint(1, 60)
        batches.append(Batch.of(events[0]["post"], events[at : at + size]))
        at += size
    batches += rng.sample(batches, len(batches) // 3)
    rng.shuffle(batches)
    for batch in batches:
        storage.store_batch(batch)


@pytest.fixture
def storage(district_db: str) -> Iterator[Storage]:
    with open_storage(district_db) as opened:
        yield opened


@pytest.mark.parametrize("seed", [1, 2])
def test_district_daily_matches_the_day_report_for_every_day(storage: Storage, seed: int) -> None:
    events = history(seed, days=20, per_day=60)
    deliver(storage, events, random.Random(seed))
    want = expected(events)
    assert kept(storage) == want
    assert sum(f["visitors_inside"] for f in want.values()) > 0  # the history has visits
    assert sum(f["voided"] for f in want.values()) > 0
    assert sum(f["emergencies"] for f in want.values()) > 0


def test_district_daily_rebuild_gives_the_same_rows(storage: Storage) -> None:
    events = history(3, days=18, per_day=50)
    deliver(storage, events, random.Random(3))
    before = kept(storage)
    assert daily.rebuild(storage, ZONE) == len(before)
    assert kept(storage) == before == expected(events)


def test_district_daily_is_computed_once_for_an_older_database(district_db: str) -> None:
    events = history(4, days=3, per_day=40)
    with open_storage(district_db) as storage:
        storage.store_batch(Batch.of(POST, events))
        storage.conn.execute("DELETE FROM daily")  # type: ignore[attr-defined]  # as made before the table
    with open_storage(district_db) as storage:
        assert kept(storage) == expected(events)


def test_district_daily_figures_outlive_a_purge_of_the_events(district_db: str) -> None:
    events = history(5, days=4, per_day=40)
    with open_storage(district_db) as storage:
        storage.store_batch(Batch.of(POST, events))
        removed = storage.purge(Purge("", "", "9999-12-31T00:00:00.000Z", ""))
        assert removed["events"] == len(events) and storage.count() == 0
        assert kept(storage) == expected(events)
    with open_storage(district_db) as storage:  # not rebuilt from nothing
        assert kept(storage) == expected(events)


def test_district_daily_days_are_local_days_of_the_storage_zone(tmp_path: Path) -> None:
    # 15:30 UTC is 22:30 in Jakarta (WIB) and 00:30 the next day in Jayapura (WIT).
    moment = datetime(2026, 9, 1, 15, 30, tzinfo=UTC)
    press = make(POST, 1, moment, Kind.IN, who=Who.RESIDENT, screening=Screening.NORMAL)
    for zone, day in (("Asia/Jakarta", "2026-09-01"), ("Asia/Jayapura", "2026-09-02")):
        with open_storage(tmp_path / f"{zone[5:]}.db", zone=zone) as storage:
            storage.store_batch(Batch.of(POST, [press]))
            assert isinstance(storage, SQLiteStorage)
            assert daily.day_figures(storage, day)[POST]["in_resident"] == 1


def test_district_daily_day_figures_and_trend_by_post_and_region(storage: Storage) -> None:
    rng = random.Random(6)
    for n, post in enumerate(("rw01", "rw02", "rw03")):
        events = [{**e, "post": post} for e in history(6 + n, days=3, per_day=30)]
        deliver(storage, events, rng)  # type: ignore[arg-type]
    first_day = daily.day_figures(storage, "2026-09-01")
    assert sorted(first_day) == ["rw01", "rw02", "rw03"]
    assert list(daily.day_figures(storage, "2026-09-01", posts=["rw02"])) == ["rw02"]
    assert daily.day_figures(storage, "2026-08-01") == {}
    span = daily.days_figures(storage, "2026-08-31", "2026-09-03")
    assert span == {
        d: daily.day_figures(storage, d) for d in ("2026-09-01", "2026-09-02", "2026-09-03")
    }
    region = daily.trend(storage, "2026-08-31", "2026-09-04", posts=["rw01", "rw03"])
    assert list(region) == ["2026-08-31", "2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"]
    assert region["2026-08-31"] == dict.fromkeys(daily.FIGURES, 0)
    assert region["2026-09-01"] == daily.total([first_day["rw01"], first_day["rw03"]])
    everyone = daily.trend(storage, "2026-09-01", "2026-09-01")["2026-09-01"]
    assert everyone["in"] == sum(f["in"] for f in first_day.values()) > 0


# -- adversarial histories: voids of voids, voids before their target, across midnight --

KINDS = [Kind.IN, Kind.OUT, Kind.VOID, Kind.RECHECK, Kind.DEPARTED, Kind.EMERGENCY, Kind.NOTE]


@st.composite
def odd_histories(draw: Any) -> tuple[list[Event], list[list[int]]]:
    n = draw(st.integers(1, 40))
    base = datetime(2026, 9, 1, 16, 0, tzinfo=UTC)  # 23:00 WIB: days turn inside the history
    minutes = sorted(draw(st.lists(st.integers(0, 60 * 24 * 20), min_size=n, max_size=n)))
    events: list[Event] = []
    for seq, minute in enumerate(minutes, 1):
        kind = draw(st.sampled_from(KINDS))
        who = draw(st.sampled_from([Who.RESIDENT, Who.VISITOR, None]))
        screening = draw(st.sampled_from([*Screening, None]))
        ref = draw(st.one_of(st.none(), st.integers(1, n)))
        moment = base + timedelta(minutes=minute)
        events.append(make(POST, seq, moment, kind, who=who, screening=screening, ref=ref))
    cuts = sorted(set(draw(st.lists(st.integers(1, n), max_size=8))) | {n + 1})
    chunks, at = [], 1
    for cut in cuts:
        if cut > at:
            chunks.append(list(range(at, cut)))
            at = cut
    order = draw(st.permutations(chunks + draw(st.lists(st.sampled_from(chunks), max_size=3))))
    return events, order


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(odd_histories())
def test_district_daily_matches_the_day_report_for_odd_histories(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[Event], list[list[int]]]
) -> None:
    events, order = case
    with SQLiteStorage(tmp_path_factory.mktemp("daily") / "district.db") as storage:
        for seqs in order:
            storage.store_batch(Batch.of(POST, [events[s - 1] for s in seqs]))
        assert kept(storage) == expected(events)


def test_district_daily_keeps_events_at_the_calendar_s_ends(storage: Storage) -> None:
    # Late on 9999-12-31 in UTC is year 10000 in Jakarta: counted on the last day there is.
    ends = [datetime(1, 1, 1, 0, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)]
    presses = [
        make(POST, n, moment, Kind.IN, who=Who.VISITOR, screening=Screening.NORMAL)
        for n, moment in enumerate(ends, 1)
    ]
    storage.store_batch(Batch.of(POST, presses))
    assert daily.day_figures(storage, "0001-01-01")[POST]["in_visitor"] == 1
    assert daily.day_figures(storage, "9999-12-31")[POST]["visitors_inside"] == 1
    assert list(daily.trend(storage, "9999-12-30", "9999-12-31")) == ["9999-12-30", "9999-12-31"]
