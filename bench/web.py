"""Server time of the guard's page with a year of history: live view, /api/summary, history.

A store of 1,000,000 events over 365 days is generated with bench/store.py's generator, a
real Post (mock pins) is opened on it, and each page is requested many times through
Flask's test client: the time is the WSGI call in this process (routing, the store, the
templates), without a network or a browser. A press goes through the station every
`PRESS_EVERY` requests, so today's cached figures are recomputed as on a busy post.

Scenarios: `live` = GET /, `summary` = GET /api/summary (today), `history` = a guard
browsing: a random day of the year, then pages and filters of that day (the first request
of each day reads its segment cold); `history_cold_day` = every request a different day
(reported, not a target: it is the store's cost of reading one day segment).

Run `python bench/web.py` (or `--quick`). The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.store import POST, QUANTILE_METHOD, ZONE_NAME, generate, pct, pick_base
from edge.config import defaults
from edge.post import Post
from web.app import create_app

TARGET_P95_MS = 25.0
PRESS_EVERY = 25  # requests between two presses during the live and summary runs
PAGES_PER_DAY = 20  # history requests on one day before the guard picks another
WARMUP = 20


def timed(get: Callable[[str], Any], paths: list[str], post: Post | None) -> list[float]:
    """Milliseconds per request; a press between requests when `post` is given."""
    times = []
    for i, path in enumerate(paths):
        if post is not None and i % PRESS_EVERY == PRESS_EVERY - 1:
            post.station.press("keluar_warga")
        t0 = time.perf_counter()
        response = get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return times


def history_paths(days: list[str], n: int, rng: random.Random) -> list[str]:
    filters = ["", "&kind=in", "&who=visitor", "&screening=recheck", "&kind=out&who=resident"]
    paths: list[str] = []
    while len(paths) < n:
        day = rng.choice(days)
        for i in range(PAGES_PER_DAY):
            paths.append(f"/history?date={day}&page={i % 8 + 1}{filters[i % len(filters)]}")
    return paths[:n]


def run(data_dir: Path, requests: int, seed: int) -> dict[str, list[float]]:
    rng = random.Random(seed)
    config = defaults().replace(
        data__dir=str(data_dir), post__id=POST, time__zone=ZONE_NAME, camera__driver="none"
    )
    with Post(config, mock=True) as post:
        client = create_app(config, post).test_client()
        days = sorted({s.min_day for s in post.store.closed})
        for path in ("/", "/api/summary", f"/history?date={days[-1]}") * WARMUP:
            client.get(path)
        live = timed(client.get, ["/"] * requests, post)
        summary = timed(client.get, ["/api/summary"] * requests, post)
        history = timed(client.get, history_paths(days, requests, rng), None)
        cold_days = rng.sample(days, min(len(days), max(requests // 10, 20)))
        cold = timed(client.get, [f"/history?date={d}" for d in cold_days], None)
    return {"live": live, "summary": summary, "history": history, "history_cold_day": cold}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=2000, help="per scenario")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 30,000 events over 30 days, 300 requests"
    )
    parser.add_argument("--dir", help="where to make the temporary data dir (a disk, not RAM)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.days, args.requests = 30_000, 30, 300
    logging.basicConfig(level=logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="posko-bench-web-", dir=pick_base(args.dir)))
    started = time.perf_counter()
    try:
        gen = generate(base / "data", args.events, args.days, args.seed)
        print(
            f"history: {gen['events']:,} events over {gen['days']} days generated in "
            f"{gen['seconds']:.1f} s (today: {gen['active_events']:,} events)",
            flush=True,
        )
        results = run(base / "data", args.requests, args.seed)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(
        f"timing: perf_counter around Flask's test client (WSGI in-process); "
        f"quantiles: {QUANTILE_METHOD}"
    )
    out: dict[str, Any] = {}
    passed = True
    for name, times in results.items():
        p50, p95 = pct(times, 50), pct(times, 95)
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = round(p50, 3), round(p95, 3)
        target = name != "history_cold_day"
        ok = p95 <= TARGET_P95_MS
        passed = passed and (ok or not target)
        verdict = ("PASS" if ok else "FAIL") if target else "info"
        print(
            f"{verdict:4}  {name:17} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  max "
            f"{max(times):7.2f} ms  over {len(times):,} requests"
        )
    out.update(
        {
            "events": gen["events"],
            "days": gen["days"],
            "requests": args.requests,
            "method": "flask test client, WSGI in-process",
            "target_p95_ms": TARGET_P95_MS,
            "targets_passed": passed,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
