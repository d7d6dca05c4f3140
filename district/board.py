"""The overview board: each post as the officer sees it (online since when, backlog, last
event, gaps, clock, version, free disk, today's figures), placed in its desa and kecamatan
by the registry, with totals at each level. The page and `/api/posts` show the same dicts.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from district import daily, uplink
from district.registry import Registry
from district.report import day_bounds
from district.storage import Storage, StorageError
from edge.events import Event, parse_time
from edge.tally import summarize

log = logging.getLogger(__name__)

TRUSTED_CLOCKS = ("synced", "manual")
TODAY = ("in", "out", "fevers", "refused", "emergencies")  # the figures a post row shows
STATES = ("online", "offline", "unknown", "never")
TOTALS = ("posts", "online", *TODAY, "pending")


def today_figures(db: Storage, day: str, zone: ZoneInfo) -> dict[str, dict[str, int]]:
    """{post: the day's figures} from the daily table (`district.daily`), or from the day's
    events for a storage without it. Emergencies are the stored Darurat events of the day,
    live or from a backlog, so a post that was offline counts too."""
    try:
        return daily.day_figures(db, day)  # type: ignore[arg-type]
    except (StorageError, AttributeError) as e:
        log.debug("daily figures unavailable (%s); counting the day's events", e)
    start, end = day_bounds(day, day, zone)
    by_post: dict[str, list[Event]] = defaultdict(list)
    for event in db.events(start, end):
        by_post[event["post"]].append(event)
    figures = {}
    for post, events in by_post.items():
        day_sum = summarize(events)
        figures[post] = {**day_sum, "fevers": day_sum["by_screening"]["recheck"]}
    return figures


def board(
    db: Storage, today: str, zone: ZoneInfo, registry: Registry, now: datetime | None = None
) -> dict[str, Any]:
    """Every post not retired, with the receiver's link, and the expected posts that never
    reported; `posts` sorted by region then name."""
    now = now or datetime.now(UTC)
    link = uplink.summary(uplink.links(db))
    figures = today_figures(db, today, zone)
    rejected = db.quarantine_counts()
    latest, lost = _latest_events(db), _lost_totals(db)  # one query each, not one per post
    rows = [
        _row(db, post, registry, figures, rejected, link["state"], now, latest, lost)
        for post in db.posts()
    ]
    seen = {r["post"] for r in rows}
    rows += [_never(p.id, registry) for p in registry.missing(seen)]
    shown = [r for r in rows if not r.pop("hidden")]
    shown.sort(key=lambda r: (r["region"] or "~", r["name"].lower(), r["post"]))
    return {
        "today": today,
        "zone": zone.key,
        "now": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "link": link,
        "posts": shown,
        "hidden": len(rows) - len(shown),
        "rejected_unknown": rejected.get(None, 0),
        "rejected_total": sum(rejected.values()),
    }


def _row(
    db: Storage,
    post: dict[str, Any],
    registry: Registry,
    figures: dict[str, dict[str, int]],
    rejected: dict[str | None, int],
    link: str,
    now: datetime,
    latest: dict[str, dict[str, Any]],
    lost: dict[str, int],
) -> dict[str, Any]:
    name, status = post["post"], post["status"]
    place = registry.place(name, status.get("name"), status.get("region"))
    # Most posts hold every seq up to their highest: no gap to look for.
    gaps = db.gaps(name) if post["contiguous"] < post["max_seq"] else []
    day = figures.get(name, {})
    pending = _waiting(post)
    oldest = status.get("oldest") if pending else None
    return {
        "post": name,
        **_place(place),
        "region_reported": status.get("region"),
        "state": _state(post.get("state"), link),
        "state_reported": post.get("state"),
        "since": _since(post),
        "last_seen": post.get("last_seen"),
        "status_time": status.get("time"),
        "pending": pending,
        "oldest_unsent": oldest,
        "oldest_unsent_age_s": _age_s(oldest, now),
        "last_event": latest.get(name),
        "contiguous": post["contiguous"],
        "max_seq": post["max_seq"],
        "gaps": gaps,
        "missing": sum(b - a + 1 for a, b in gaps),
        "lost": lost.get(name, 0),
        "clock": status.get("clock"),
        "clock_trusted": status.get("clock") in TRUSTED_CLOCKS,
        "version": status.get("version"),
        "disk_free": status.get("disk_free"),
        "rejected": rejected.get(name, 0),
        "today": {k: int(day.get(k, 0)) for k in TODAY},
    }


def _place(place: Any) -> dict[str, Any]:
    return {
        "name": place.name,
        "region": place.region,
        "desa": place.desa_name,
        "kecamatan": place.kecamatan,
        "kecamatan_name": place.kecamatan_name,
        "expected": place.expected,
        "known_region": place.known_region,
        "formerly": list(place.formerly),
        "hidden": place.hidden,
    }


def _never(post: str, registry: Registry) -> dict[str, Any]:
    """An expected post that has not sent anything yet."""
    return {
        "post": post,
        **_place(registry.place(post)),
        "region_reported": None,
        "state": "never",
        "state_reported": None,
        **dict.fromkeys(("since", "last_seen", "status_time", "pending", "oldest_unsent")),
        **dict.fromkeys(("oldest_unsent_age_s", "last_event", "clock", "version", "disk_free")),
        "contiguous": 0,
        "max_seq": 0,
        "gaps": [],
        "missing": 0,
        "lost": 0,
        "clock_trusted": False,
        "rejected": 0,
        "today": dict.fromkeys(TODAY, 0),
    }


def _state(reported: Any, link: str) -> str:
    """What the page can say: while the receiver is cut off, no post's state is known."""
    if link == uplink.CUT:
        return "unknown"
    return "online" if reported == "online" else "offline"


def _since(post: dict[str, Any]) -> str | None:
    """Online since the Pi's connection (its status says when); offline since last seen."""
    status = post["status"]
    if post.get("state") == "online" and status.get("since"):
        return str(min(status["since"], post.get("last_seen") or status["since"]))
    return post.get("last_seen")


def _age_s(text: Any, now: datetime) -> int | None:
    try:
        return max(0, int((now - parse_time(text)).total_seconds()))
    except (AttributeError, TypeError, ValueError):
        return None


def _latest_events(db: Storage) -> dict[str, dict[str, Any]]:
    """Each post's newest stored event (by seq): seq, time, kind and who."""
    conn = getattr(db, "conn", None)
    if conn is None:
        return {}
    rows = conn.execute(  # a primary-key search per post (a join would scan the events)
        "SELECT post, seq, time, kind, who FROM events WHERE (post, seq) IN (SELECT post, "
        "(SELECT max(seq) FROM events AS e WHERE e.post = posts.post) FROM posts)"
    )
    return {post: {"seq": seq, "time": t, "kind": k, "who": w} for post, seq, t, k, w in rows}


def _lost_totals(db: Storage) -> dict[str, int]:
    """How many seqs each post declared lost."""
    conn = getattr(db, "conn", None)
    if conn is None:
        return {}
    rows = conn.execute("SELECT post, sum(last - first + 1) FROM lost GROUP BY post")
    return {post: int(total) for post, total in rows}


def _waiting(post: dict[str, Any]) -> int | None:
    """Events the Pi holds that the district does not: from its last status, corrected by
    the batches that arrived since (a batch's range ends at the Pi's last seq)."""
    status = post["status"]
    if "last_seq" not in status and not post["max_seq"]:
        return None
    held: int = max(status.get("last_seq", 0), post["max_seq"]) - post["contiguous"]
    return held


def regions(rows: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """kecamatan -> desa -> posts, each level with its totals; posts without a known
    kecamatan or desa stay in a group of their own (code "")."""
    kecamatan: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        kecamatan[row["kecamatan"]][row["region"]].append(row)
    groups = []
    for kc in sorted(kecamatan, key=lambda c: c or "~"):
        places = sorted(kecamatan[kc].items(), key=lambda d: d[0] or "~")
        desa = [
            {"code": dc, "name": registry.desa.get(dc), "posts": posts, "totals": totals(posts)}
            for dc, posts in places
        ]
        members = [p for _, posts in places for p in posts]
        groups.append(
            {
                "code": kc,
                "name": registry.kecamatan.get(kc),
                "desa": desa,
                "totals": totals(members),
            }
        )
    return groups


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Posts, how many online, today's figures and the backlog, summed."""
    found = dict.fromkeys(TOTALS, 0)
    for row in rows:
        found["posts"] += 1
        found["online"] += row["state"] == "online"
        found["pending"] += row["pending"] or 0
        for key in TODAY:
            found[key] += row["today"][key]
    return found


SORTS = {
    "region": lambda r: (r["region"] or "~", r["name"].lower(), r["post"]),
    "name": lambda r: (r["name"].lower(), r["post"]),
    "state": lambda r: (STATES.index(r["state"]), r["name"].lower()),
    "last_seen": lambda r: r["last_seen"] or "",  # oldest first: the silent posts on top
    "pending": lambda r: -(r["pending"] or 0),  # the largest backlog first
    "fevers": lambda r: -r["today"]["fevers"],
    "emergencies": lambda r: -r["today"]["emergencies"],
}
REGION_PREFIX = re.compile(r"^\d{2}\.\d{2}(\.\d{2}(\.\d{4})?)?$")
MAX_QUERY = 80


@dataclass(frozen=True)
class Selection:
    """Which posts the officer asked for (`?q=&state=&region=&sort=`), checked."""

    q: str = ""
    state: str = ""
    region: str = ""
    sort: str = "region"


def selection(args: Mapping[str, str]) -> Selection:
    """The selection in query parameters; ValueError naming the bad one."""
    q, state = args.get("q", "").strip(), args.get("state", "")
    region, sort = args.get("region", ""), args.get("sort", "region") or "region"
    if len(q) > MAX_QUERY or not q.isprintable():
        raise ValueError("q")
    if state not in ("", *STATES):
        raise ValueError("state")
    if region and not REGION_PREFIX.fullmatch(region):
        raise ValueError("region")
    if sort not in SORTS:
        raise ValueError("sort")
    return Selection(q, state, region, sort)


def select(rows: list[dict[str, Any]], chosen: Selection) -> list[dict[str, Any]]:
    """The rows the selection keeps, in its order."""
    q = chosen.q.casefold()
    kept = [
        r
        for r in rows
        if (not q or q in r["name"].casefold() or q in r["post"])
        and (not chosen.state or r["state"] == chosen.state)
        and (not chosen.region or (r["region"] or "").startswith(chosen.region))
    ]
    return sorted(kept, key=SORTS[chosen.sort])
