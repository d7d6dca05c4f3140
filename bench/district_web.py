"""Response times of the district page's overview and daily rekap with 500 posts and 30 days
of events (about 15 million), read from the daily figures (district/daily.py), against the
same figures computed from the raw events in the same run (the baseline).

Phases:
  1. a district database of --posts posts x --days local days (ending today) x --per-day
     events, from bench/store.py's realistic day generator, written with executemany in
     large transactions straight into the tables, then `district.daily.rebuild`; kept under
     --dir between runs with --keep (rebuilt when the parameters or today differ);
  2. the real Flask app (`district.web.create_app`, test client, logged in): GET / and
     /api/posts (the overview) and /rekap at every level for yesterday, --samples each;
  3. baseline: the overview's figures (today per post) and the rekap's (yesterday per post,
     with the 14 lookback days for visitors inside) from the raw events with
     `edge.tally.summarize`, --baseline-samples each.

Run `python bench/district_web.py` (`--posts 5 --days 2` for a smoke run). The last line of
the output is one JSON object with the figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from bench.store import day_events
from district import daily, registry
from district.accounts import Cost, add_user
from district.auth import FORM_COOKIE
from district.group_commit import COLUMNS, now_text, row_of
from district.report import day_bounds
from district.sqlite import SQLiteStorage
from district.web import create_app
from edge.events import Event, local_day
from edge.tally import follows_visits, lookback_first, summarize

ZONE_NAME = "Asia/Jakarta"
REGISTRY = Path(__file__).resolve().parent.parent / "district" / "regions" / "pesawaran.toml"
TEMPLATES = 24  # distinct generated days, renumbered and shifted for every post and day
TARGET_P95_MS = 100.0
USER, PASSWORD = "bench", "bench-kata-sandi-123"
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


# -- phase 1: the database ----------------------------------------------------------------


def templates(per_day: int, zone: ZoneInfo, seed: int) -> list[tuple[date, list[tuple[Any, ...]]]]:
    """Realistic days of one post (seqs from 1), as rows of the events table."""
    rng = random.Random(seed)
    found = []
    for n in range(TEMPLATES):
        day = date(2026, 9, 1) + timedelta(days=n)
        events = day_events(rng, day, zone, 1, per_day, None)
        found.append((day, [row_of(cast(Event, e), "") for e in events]))  # post: set later
    return found


def shifted(
    template: tuple[date, list[tuple[Any, ...]]], post: str, day: date, first: int, seen: str
) -> list[tuple[Any, ...]]:
    """A template day moved to `post`, local `day` and seqs from `first`."""
    origin, rows = template
    gap, offset = day - origin, first - 1
    dates: dict[str, str] = {}
    out = []
    for row in rows:
        head = row[2][:10]
        if head not in dates:
            dates[head] = (date.fromisoformat(head) + gap).isoformat()
        ref = row[10] + offset if row[10] is not None else None
        out.append(
            (post, row[1] + offset, dates[head] + row[2][10:], *row[3:10], ref, *row[11:13], seen)
        )
    return out


def build(path: Path, posts: int, days: int, per_day: int, seed: int) -> int:
    """Write the database; the number of events."""
    zone = ZoneInfo(ZONE_NAME)
    today = datetime.now(zone).date()
    names = [f"posko-{n:03d}" for n in range(1, posts + 1)]
    regions = sorted(registry.load(REGISTRY).desa) or ["18.09.01.2001"]
    pool = templates(per_day, zone, seed)
    rng = random.Random(seed)
    seen, total, started = now_text(), 0, time.perf_counter()
    with SQLiteStorage(path, zone=ZONE_NAME) as storage:
        db = storage.conn
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")  # 1 GB
        # The events' secondary indexes are made again after the load: sorting once is faster.
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            db.execute(f"DROP INDEX {name}")
        for n in range(days):
            day = today - timedelta(days=days - 1 - n)
            with storage.transaction():
                for post in names:
                    rows = shifted(rng.choice(pool), post, day, n * per_day + 1, seen)
                    db.executemany(_INSERT, rows)
                    total += len(rows)
            rate = total / (time.perf_counter() - started)
            print(f"  day {n + 1}/{days}: {total:,} events ({rate:,.0f}/s)", flush=True)
        t = time.perf_counter()
        for _, sql in indexes:
            db.execute(sql)
        print(f"  {len(indexes)} indexes of the events in {time.perf_counter() - t:.0f} s")
        last = days * per_day
        with storage.transaction():
            for i, post in enumerate(names):
                status = {
                    "state": "online",
                    "name": f"Posko {i + 1}",
                    "region": regions[i % len(regions)],
                    "version": "bench",
                    "last_seq": last,
                    "time": seen,
                }
                db.execute(
                    "INSERT INTO posts (post, contiguous, max_seq, events, batches, state, "
                    "status, last_seen) VALUES (?, ?, ?, ?, ?, 'online', ?, ?)",
                    (post, last, last, last, days, json.dumps(status), seen),
                )
        t = time.perf_counter()
        made = daily.rebuild(storage, zone)
        print(f"  daily figures: {made:,} post-days in {time.perf_counter() - t:.1f} s", flush=True)
    return total


def database(args: argparse.Namespace, base: Path) -> tuple[Path, int]:
    """The database to time (reused from --dir when --keep made it for these parameters)."""
    wanted = {
        "posts": args.posts,
        "days": args.days,
        "per_day": args.per_day,
        "seed": args.seed,
        "today": datetime.now(ZoneInfo(ZONE_NAME)).date().isoformat(),
    }
    path, meta = base / "district-web.db", base / "district-web.json"
    if args.keep and path.is_file() and meta.is_file():
        known = json.loads(meta.read_text())
        if {k: known.get(k) for k in wanted} == wanted:
            print(f"database: reusing {path} ({known['events']:,} events)")
            return path, int(known["events"])
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), meta):
        stale.unlink(missing_ok=True)
    print(f"database: building {path}: {args.posts} posts x {args.days} days x {args.per_day}")
    t = time.perf_counter()
    events = build(path, args.posts, args.days, args.per_day, args.seed)
    print(f"database: {events:,} events in {time.perf_counter() - t:.0f} s")
    meta.write_text(json.dumps({**wanted, "events": events}))
    return path, events


# -- phase 2: the page --------------------------------------------------------------------


def logged_in(path: Path) -> Any:
    """A test client of the real app, logged in as a viewer (made here, cheap hash)."""
    with SQLiteStorage(path) as storage:
        if not storage.conn.execute("SELECT 1 FROM users WHERE name = ?", (USER,)).fetchone():
            add_user(storage, USER, "viewer", PASSWORD, cost=Cost(n=2**8, r=8, p=1))
    client = create_app(path, zone=ZONE_NAME, registry=registry.load(REGISTRY)).test_client()
    client.get("/login")
    cookie = client.get_cookie(FORM_COOKIE)
    form = {"name": USER, "password": PASSWORD, "csrf_token": cookie.value if cookie else ""}
    answer = client.post("/login", data=form)
    if answer.status_code != 302:
        raise SystemExit(f"could not log in to the district page: {answer.status_code}")
    return client


def timed(client: Any, url: str, samples: int) -> list[float]:
    found = []
    for _ in range(samples):
        t = time.perf_counter()
        answer = client.get(url)
        found.append((time.perf_counter() - t) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"GET {url}: {answer.status_code}")
    return found


# -- phase 3: the baseline ----------------------------------------------------------------


def raw_overview(storage: SQLiteStorage, today: str, zone: ZoneInfo) -> dict[str, Any]:
    """Today's figures per post from the day's events (what the page did before)."""
    start, end = day_bounds(today, today, zone)
    by_post: dict[str, list[Event]] = defaultdict(list)
    for event in storage.events(start, end):
        by_post[event["post"]].append(event)
    return {p["post"]: summarize(by_post.get(p["post"], [])) for p in storage.posts()}


def raw_rekap(storage: SQLiteStorage, day: str, zone: ZoneInfo) -> dict[str, Any]:
    """A day's figures per post from its events, visitors inside from the lookback days."""
    start, end = day_bounds(lookback_first(day), day, zone)
    found = {}
    for p in storage.posts():
        on_day, earlier = [], []
        for event in storage.events(start, end, p["post"]):
            if local_day(event["time"], zone) == day:
                on_day.append(event)
            elif follows_visits(event):
                earlier.append(event)
        found[p["post"]] = summarize(on_day, earlier)
    return found


def timed_call(call: Callable[[], Any], samples: int) -> list[float]:
    found = []
    for _ in range(samples):
        t = time.perf_counter()
        call()
        found.append((time.perf_counter() - t) * 1000)
    return found


def run(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    path, events = database(args, base)
    zone = ZoneInfo(ZONE_NAME)
    today = datetime.now(zone).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    client = logged_in(path)
    urls = ["/", "/api/posts"]
    urls += [f"/rekap?day={yesterday}&level={lv}" for lv in ("post", "desa", "kecamatan")]
    pages: dict[str, list[float]] = {url: [] for url in urls}
    for url in pages:
        timed(client, url, 2)  # warm-up: templates compiled, pages cached by the OS
        pages[url] = timed(client, url, args.samples)
        print(f"{url}: median {statistics.median(pages[url]):.1f} ms, p95 {p95(pages[url]):.1f} ms")
    overview = [t for url, ts in pages.items() if not url.startswith("/rekap") for t in ts]
    rekap = [t for url, ts in pages.items() if url.startswith("/rekap") for t in ts]
    with SQLiteStorage(path, read_only=True) as storage:
        raw_o = timed_call(
            lambda: raw_overview(storage, today.isoformat(), zone), args.baseline_samples
        )
        print(f"baseline overview (raw events): p95 {p95(raw_o):.0f} ms")
        raw_r = timed_call(lambda: raw_rekap(storage, yesterday, zone), args.baseline_samples)
        print(f"baseline rekap (raw events): p95 {p95(raw_r):.0f} ms")
    result = {
        "overview_p95_ms": round(p95(overview), 1),
        "rekap_p95_ms": round(p95(rekap), 1),
        "posts": args.posts,
        "events": events,
        "days": args.days,
        "samples": args.samples,
        "baseline_overview_p95_ms": round(p95(raw_o), 1),
        "baseline_rekap_p95_ms": round(p95(raw_r), 1),
        "overview_speedup": round(p95(raw_o) / p95(overview), 1),
        "rekap_speedup": round(p95(raw_r) / p95(rekap), 1),
        "pages_p95_ms": {url: round(p95(ts), 1) for url, ts in pages.items()},
    }
    for name in ("overview_p95_ms", "rekap_p95_ms"):
        verdict = "ok" if result[name] <= TARGET_P95_MS else "MISSED"
        print(f"{name} {result[name]} <= {TARGET_P95_MS:g}: {verdict}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=1000, help="events per post and day")
    parser.add_argument("--samples", type=int, default=30, help="timed requests per page")
    parser.add_argument("--baseline-samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--dir", help="where the database is made (and kept with --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the database for next runs")
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2 (the rekap times yesterday)")
    if args.keep and not args.dir:
        parser.error("--keep needs --dir (where the database is kept)")
    if args.dir:
        base = Path(args.dir)
        base.mkdir(parents=True, exist_ok=True)
        result = run(args, base)
    else:
        with tempfile.TemporaryDirectory(prefix="posko-bench-district-") as tmp:
            result = run(args, Path(tmp))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
