"""The daily rekap: each post's figures of a day (in, out, fevers, refused, emergencies,
sensor faults, visitors inside at the end of the day), summed per desa and kecamatan, a
14-day trend per region (drawn as SVG on the server), and the refusals with their referrals.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from district import daily
from district.emergencies import sql
from district.registry import Place
from district.report import day_bounds
from district.storage import Storage
from edge.events import utc_text
from edge.tally import Referral, referrals

log = logging.getLogger(__name__)

LEVELS = ("post", "desa", "kecamatan")
FIGURES = ("in", "out", "fevers", "refused", "emergencies", "sensor_faults", "visitors_inside")
TREND_DAYS = 14
Figures = dict[str, int]


def daily_figures(
    db: Storage, first: str, last: str, zone: ZoneInfo
) -> dict[str, dict[str, Figures]]:
    """{day: {post: figures}} for the local days first..last (posts with events only), from
    the daily figures kept as batches arrive (`district.daily`; their zone is the
    receiver's, `zone` only names the page's)."""
    found = daily.days_figures(sql(db), first, last)  # one query for every day
    return {
        day: {post: {k: f[k] for k in FIGURES} for post, f in found.get(day, {}).items()}
        for day in _days(first, last)
    }


def _days(first: str, last: str) -> list[str]:
    one, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(one + timedelta(days=n)).isoformat() for n in range((end - one).days + 1)]


def zero() -> Figures:
    return dict.fromkeys(FIGURES, 0)


def add(total: Figures, more: Figures) -> None:
    for name in FIGURES:
        total[name] += more.get(name, 0)


# -- the rekap of one day at one level --------------------------------------------------


@dataclass
class Row:
    """One line of the rekap: a post, a desa or a kecamatan, with its figures."""

    level: str
    code: str  # post id, desa code or kecamatan code ("" where the region is unknown)
    name: str
    parent: str  # the kecamatan's name for a desa or a post, the desa's for a post
    figures: Figures
    posts: int


def rows(figures: dict[str, Figures], places: dict[str, Place], level: str) -> list[Row]:
    """The day's rows at `level`, every known post included (with zeros if it sent nothing)."""
    found: dict[str, Row] = {}
    for post in sorted(set(places) | set(figures)):
        place = places.get(post) or Place(post, "", "", None, None, False, False, False)
        if place.hidden and post not in figures:
            continue
        code, name, parent = _group(post, place, level)
        row = found.setdefault(code, Row(level, code, name, parent, zero(), 0))
        add(row.figures, figures.get(post, {}))
        row.posts += 1
    return sorted(
        found.values(), key=lambda r: (r.code == "" and level != "post", r.parent, r.name)
    )


def _group(post: str, place: Place, level: str) -> tuple[str, str, str]:
    kecamatan = place.kecamatan_name or place.kecamatan
    if level == "post":
        return post, place.name or post, " · ".join(x for x in (kecamatan, place.desa_name) if x)
    if level == "desa":
        return place.region, place.desa_name or place.region, kecamatan
    return place.kecamatan, kecamatan, ""


def total(all_rows: Iterable[Row]) -> Figures:
    summed = zero()
    for row in all_rows:
        add(summed, row.figures)
    return summed


def trend(
    db: Storage, first: str, last: str, places: dict[str, Place], level: str
) -> dict[str, list[tuple[str, Figures]]]:
    """{region code: [(day, figures)] for the days first..last}; "*" is the whole district.
    Summed by the database, one query per region (the daily figures of 14 days of 500
    posts are too many to add up here in time)."""
    handle = sql(db)
    seen = {
        post
        for (post,) in handle.conn.execute(
            "SELECT DISTINCT post FROM daily WHERE day BETWEEN ? AND ?", (first, last)
        )
    }
    groups: dict[str, list[str] | None] = {"*": None}
    if level != "post":
        members: dict[str, list[str]] = defaultdict(list)
        for post in sorted(seen | set(places)):
            place = places.get(post) or Place(post, "", "", None, None, False, False, False)
            members[_group(post, place, level)[0]].append(post)
        groups.update(members)
    series: dict[str, list[tuple[str, Figures]]] = {}
    for code, posts in groups.items():
        per_day = daily.trend(handle, first, last, posts)
        series[code] = [(day, {k: f[k] for k in FIGURES}) for day, f in per_day.items()]
    return series


def trend_days(day: str) -> tuple[str, str]:
    """The first and last day of the trend that ends on `day`."""
    last = date.fromisoformat(day)
    return (last - timedelta(days=TREND_DAYS - 1)).isoformat(), day


# -- refusals and referrals --------------------------------------------------------------


def refusals(
    db: Storage, post: str, day: str, zone: ZoneInfo, *, follow_days: int = 14
) -> list[Referral]:
    """The entries refused at `post` on `day`, each with the latest follow-up the post sent
    (a referral note may come days later: `follow_days` of notes are read)."""
    last = (date.fromisoformat(day) + timedelta(days=follow_days)).isoformat()
    start, end = day_bounds(day, last, zone)
    day_start, day_end = day_bounds(day, day, zone)
    events = list(db.events(start, end, post=post))
    refused = referrals(events)
    return [r for r in refused if _on_day(r, day_start, day_end)]


def _on_day(referral: Referral, start: str, end: str) -> bool:
    return start <= utc_text(referral.time) < end


# -- the SVG trend chart (server-drawn, like the guard's day report) ---------------------

WIDTH, HEIGHT = 560, 160
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 10, 22


@dataclass(frozen=True)
class Column:
    day: str
    label: str  # day of the month
    x: float
    width: float
    entries_y: float
    entries_h: float
    alerts_y: float  # fevers and refusals, drawn over the entries
    alerts_h: float
    figures: Figures


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    columns: list[Column]
    ticks: list[tuple[float, int]]
    base: float
    left: int
    right: float


def trend_chart(series: list[tuple[str, Figures]], top_of: Callable[[int], int]) -> TrendChart:
    """Bars of entries per day, the day's fevers in another colour over them."""
    peak = max((f["in"] for _, f in series), default=0)
    top = top_of(max(peak, 1))
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    slot = (WIDTH - LEFT - RIGHT) / max(len(series), 1)
    columns = []
    for n, (day, figures) in enumerate(series):
        entries_h = plot_h * figures["in"] / top
        alerts_h = plot_h * min(figures["fevers"], figures["in"]) / top
        columns.append(
            Column(
                day,
                day[8:],
                round(LEFT + n * slot + slot * 0.15, 1),
                round(slot * 0.7, 1),
                round(base - entries_h, 1),
                round(entries_h, 1),
                round(base - alerts_h, 1),
                round(alerts_h, 1),
                figures,
            )
        )
    ticks = [(round(base - plot_h * k / 4, 1), top * k // 4) for k in range(5) if top * k % 4 == 0]
    return TrendChart(WIDTH, HEIGHT, columns, ticks, base, LEFT, WIDTH - RIGHT)
