"""Press-to-durable latency of the event store (edge/store.py), against stock TinyDB.

Phases:
  1. small: a fresh store with a 1,000-event history built through `EventStore.append`,
     then `--samples` timed appends;
  2. large: a year of history (1,000,000 events over 365 days by default) written directly
     in the journal format by a child process (so its memory does not count), the store
     opened on it, then `--samples` timed appends, with the bytes the process sent to the
     disk (/proc/self/io write_bytes) and its RSS;
  3. baseline: stock `TinyDB(path)` (JSONStorage) with the same events, then grown for at
     most `--baseline-seconds` to show how its insert cost follows the history size.

Run `python bench/store.py` (or `--quick` for a smoke run). The last line of the output is
one JSON object with the numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tinydb import TinyDB

from edge import events as ev
from edge.events import Kind, Screening, Who
from edge.journal import atomic_write, encode
from edge.segments import INDEX_VERSION, Segment, segment_name
from edge.store import EventStore

POST = "bench"
ZONE_NAME = "Asia/Jakarta"
HISTORY = 1_000  # events in the small store (and the baseline's first batch)
WARMUP = 20  # untimed appends after opening the large store (first write opens the file)
TAIL = 200  # baseline growth: p99 over the last this many inserts
QUANTILE_METHOD = "statistics.quantiles(n=100, method='inclusive')"

TARGET_LARGE_P99_MS = 10.0
TARGET_RATIO = 1.5
TARGET_BYTES = 8192
TARGET_RSS_MB = 80.0


# -- measuring helpers ----------------------------------------------------------------


def pct(values: list[float], p: int) -> float:
    """The p-th percentile (1..99), linear interpolation between order statistics."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def write_bytes() -> int:
    """Bytes this process caused to be sent to the block layer (/proc/self/io)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def filesystem_of(path: Path) -> tuple[str, str, str]:
    """(mount point, fs type, source) of the mount holding path, from /proc/self/mountinfo."""
    real = os.path.realpath(path)
    best = ("/", "unknown", "unknown")
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                mount = left.split()[4].replace("\\040", " ")
                fstype, source = [*right.split(), "?", "?"][:2]
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0]):
                    best = (mount, fstype, source)
    except OSError:
        pass
    return best


RAM_FS = {"tmpfs", "ramfs", "devtmpfs"}


def pick_base(explicit: str | None) -> Path:
    """Where the temporary data dirs go: a disk-backed filesystem, never a RAM one."""
    if explicit:
        return Path(explicit)
    for candidate in (Path(tempfile.gettempdir()), Path.cwd(), Path("/work")):
        if candidate.is_dir() and filesystem_of(candidate)[1] not in RAM_FS:
            return candidate
    return Path.cwd()


def in_workdir(prefix: str, base: str | None, keep: bool, run: Callable[[Path], Any]) -> int:
    """Run a bench in a new temporary directory under `pick_base(base)` (kept with `keep`),
    then print its figures as the last line, one JSON object."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=pick_base(base)))
    try:
        result = run(work)
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


# -- realistic events -----------------------------------------------------------------


def press(rng: random.Random) -> tuple[Kind, dict[str, Any]]:
    """The kind and fields of one button press: an entry (screened) or an exit."""
    who = Who.RESIDENT if rng.random() < 0.85 else Who.VISITOR
    if rng.random() < 0.4:
        return Kind.OUT, {"who": who}
    temp = round(rng.gauss(36.6, 0.3), 1)
    raw = round(temp - 0.45 + rng.gauss(0, 0.06), 2)
    screening = Screening.NORMAL if temp < 37.3 else Screening.RECHECK
    return Kind.IN, {"who": who, "temp_c": temp, "temp_raw_c": raw, "screening": screening}


ORIGINS = ("Kab. Bogor", "Kota Bandung", "Jakarta Timur", "Kab. Garut", "Kota Depok")
PURPOSES = ("keluarga", "kerja", "dagang", "kurir", "lainnya")


def day_events(
    rng: random.Random,
    day: date,
    zone: ZoneInfo,
    first: int,
    count: int,
    not_after: datetime | None,
) -> list[dict[str, Any]]:
    """count events with seqs first.. on a local day: presses, rechecks, voids, visitors."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    lo, hi = start + timedelta(hours=5), start + timedelta(hours=23)
    if not_after is not None and hi > not_after:
        hi = max(not_after - timedelta(seconds=1), start)
        lo = min(lo, start + (hi - start) / 4)
    span = max((hi - lo).total_seconds(), 0.0)
    offsets = sorted(rng.random() * span for _ in range(count))
    base = lo.astimezone(UTC)
    docs: list[dict[str, Any]] = []
    rechecks: list[int] = []  # entries waiting for their second reading
    visitors: list[int] = []  # visitor entries of the day
    for i, offset in enumerate(offsets):
        seq = first + i
        moment = base + timedelta(seconds=offset)
        clock = "synced" if rng.random() < 0.97 else "unsynced"
        r = rng.random()
        if rechecks and r < 0.3:
            temp = round(rng.gauss(37.1, 0.3), 1)
            doc = ev.make(
                POST,
                seq,
                moment,
                Kind.RECHECK,
                clock=clock,
                ref=rechecks.pop(0),
                temp_c=temp,
                temp_raw_c=round(temp - 0.45 + rng.gauss(0, 0.06), 2),
                screening=Screening.NORMAL if temp < 37.3 else Screening.REFUSED,
            )
        elif r < 0.006 and i > 0:
            doc = ev.make(
                POST, seq, moment, Kind.VOID, clock=clock, ref=seq - rng.randint(1, min(i, 5))
            )
        elif r < 0.016 and visitors:
            doc = ev.make(
                POST,
                seq,
                moment,
                Kind.VISITOR,
                clock=clock,
                ref=visitors[-1],
                data={
                    "origin": rng.choice(ORIGINS),
                    "purpose": rng.choice(PURPOSES),
                    "nights": rng.randint(0, 3),
                },
            )
        elif r < 0.022 and visitors:
            doc = ev.make(POST, seq, moment, Kind.DEPARTED, clock=clock, ref=rng.choice(visitors))
        elif r < 0.024:
            doc = ev.make(
                POST,
                seq,
                moment,
                Kind.IN,
                clock=clock,
                who=Who.RESIDENT if rng.random() < 0.85 else Who.VISITOR,
                screening=Screening.FAULT,
                fault=rng.choice(("i2c_error", "out_of_range", "error_flag")),
            )
        else:
            kind, fields = press(rng)
            photo = kind is Kind.IN and fields["who"] is Who.VISITOR and rng.random() < 0.8
            doc = ev.make(POST, seq, moment, kind, clock=clock, photo=photo, **fields)
            if kind is Kind.IN and fields["screening"] is Screening.RECHECK:
                rechecks.append(seq)
            if kind is Kind.IN and fields["who"] is Who.VISITOR:
                visitors.append(seq)
        docs.append(doc)
    return docs


def generate(data_dir: Path, n: int, days: int, seed: int) -> dict[str, Any]:
    """Write n events over `days` local days ending today, as EventStore would leave them.

    Closed days are listed in events/index.json; today's segment is the active one.
    """
    if n < days:
        raise SystemExit(f"--large-events ({n}) must be at least --days ({days})")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    zone = ZoneInfo(ZONE_NAME)
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=days - 1 - i) for i in range(days)]
    # Busier on weekends and around festivals; every day has at least one event.
    weights = [(1.3 if d.weekday() >= 5 else 1.0) * rng.uniform(0.7, 1.3) for d in day_list]
    total = sum(weights)
    counts = [max(1, int(n * w / total)) for w in weights]
    counts[-1] = max(1, counts[-1] + n - sum(counts))
    while sum(counts) > n:  # only if rounding up to 1 overshot
        counts[counts.index(max(counts))] -= 1
    events_dir = data_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    closed: list[Segment] = []
    seq, size_total = 1, 0
    for i, (day, count) in enumerate(zip(day_list, counts, strict=True)):
        last_day = i == days - 1
        docs = day_events(rng, day, zone, seq, count, now if last_day else None)
        blob = b"".join(encode(d) for d in docs)
        name = segment_name(seq, day.isoformat())
        with open(events_dir / name, "wb") as f:
            f.write(blob)
        size_total += len(blob)
        if not last_day:
            closed.append(
                Segment(
                    name, seq, seq + count - 1, count, day.isoformat(), day.isoformat(), len(blob)
                )
            )
        seq += count
    # Exactly what EventStore._write_index writes.
    index = {"version": INDEX_VERSION, "seq_floor": 0, "segments": [asdict(s) for s in closed]}
    atomic_write(events_dir / "index.json", json.dumps(index, indent=0).encode())
    os.sync()  # so that writeback of the history does not land in the measured appends
    return {
        "events": seq - 1,
        "days": days,
        "segments": days,
        "bytes": size_total,
        "active_events": counts[-1],
        "seconds": time.perf_counter() - t0,
        "rss_peak_mb": status_kib("VmHWM") / 1024,
    }


# -- phases ---------------------------------------------------------------------------


def timed_appends(
    store: EventStore, rng: random.Random, n: int
) -> tuple[list[float], list[dict[str, Any]]]:
    latencies: list[float] = []
    made: list[dict[str, Any]] = []
    for _ in range(n):
        kind, fields = press(rng)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        event = store.append(kind, moment=now, clock="synced", **fields)
        latencies.append((time.perf_counter() - t0) * 1000)
        made.append(event)
    return latencies, made


def phase_small(data_dir: Path, samples: int, rng: random.Random) -> dict[str, Any]:
    """The small store with its 1,000-event history, left open for the interleaved timing."""
    store = EventStore(data_dir, POST, ZONE_NAME)
    history_ms, history = timed_appends(store, rng, HISTORY)
    io0 = write_bytes()
    timed_appends(store, rng, samples)  # for the bytes only; the latencies come interleaved
    io1 = write_bytes()
    return {
        "store": store,
        "history_lat": history_ms,
        "events": history,
        "bytes_per_event": (io1 - io0) / samples,
    }


def interleaved(
    small: EventStore, large: EventStore, rng: random.Random, n: int
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """Alternate appends to both stores, so that the machine's noise hits both alike."""
    small_lat: list[float] = []
    large_lat: list[float] = []
    made: list[dict[str, Any]] = []
    for i in range(n):
        pairs = [(small, small_lat), (large, large_lat)]
        for store, into in pairs if i % 2 == 0 else reversed(pairs):
            lat, events = timed_appends(store, rng, 1)
            into += lat
            if store is small:
                made += events
    return small_lat, large_lat, made


def phase_large(
    data_dir: Path,
    n: int,
    days: int,
    samples: int,
    seed: int,
    rng: random.Random,
    small: EventStore,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    child = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--generate",
            str(data_dir),
            str(n),
            str(days),
            "--seed",
            str(seed),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    generate_seconds = time.perf_counter() - t0
    gen = json.loads(child.stdout.strip().splitlines()[-1])
    index_path = data_dir / "events" / "index.json"
    index_before = index_path.read_bytes()
    index_stat = index_path.stat()

    gc.collect()
    t0 = time.perf_counter()
    store = EventStore(data_dir, POST, ZONE_NAME)
    open_seconds = time.perf_counter() - t0
    try:
        after = index_path.stat()
        rewritten = (
            index_path.read_bytes() != index_before
            or after.st_ino != index_stat.st_ino
            or after.st_mtime_ns != index_stat.st_mtime_ns
        )
        count_ok = store.count == gen["events"] and store.last_seq == gen["events"]
        timed_appends(store, rng, WARMUP)
        io0 = write_bytes()
        timed_appends(store, rng, samples)  # for the bytes; the latencies come interleaved
        io1 = write_bytes()
        small_lat, lat, small_events = interleaved(small, store, rng, samples)
        rss_mb = status_kib("VmRSS") / 1024
        # The first press after midnight: closes today's segment and rewrites the index.
        zone = ZoneInfo(ZONE_NAME)
        tomorrow = datetime.now(zone).date() + timedelta(days=1)
        moment = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 0, 0, 1, tzinfo=zone)
        kind, fields = press(rng)
        t0 = time.perf_counter()
        store.append(kind, moment=moment, clock="synced", **fields)
        roll_ms = (time.perf_counter() - t0) * 1000
        # A light check that the generated history reads back as the store describes it.
        checked = []
        for segment in (store.closed[0], store.closed[len(store.closed) // 2]):
            got = len(store.on_day(segment.min_day))
            checked.append(got == segment.count)
    finally:
        store.close()
    return {
        "lat": lat,
        "small_lat": small_lat,
        "small_events": small_events,
        "gen": gen,
        "generate_seconds": generate_seconds,
        "open_seconds": open_seconds,
        "roll_ms": roll_ms,
        "index_rewritten": rewritten,
        "count_ok": count_ok and all(checked),
        "rss_mb": rss_mb,
        "bytes_per_event": (io1 - io0) / samples,
    }


def phase_baseline(
    data_dir: Path, events: list[dict[str, Any]], samples: int, seconds: float, rng: random.Random
) -> dict[str, Any]:
    db = TinyDB(data_dir / "db.json")  # stock: JSONStorage, no middleware
    try:
        for doc in events[:HISTORY]:
            db.insert(dict(doc))
        lat: list[float] = []
        io0 = write_bytes()
        for doc in events[HISTORY : HISTORY + samples]:
            copy = dict(doc)
            t0 = time.perf_counter()
            db.insert(copy)
            lat.append((time.perf_counter() - t0) * 1000)
        bytes_per_event = (write_bytes() - io0) / max(len(lat), 1)

        # Growth: keep inserting, doubling the size batch by batch, until time runs out.
        size = len(db)
        seq = max(d["seq"] for d in events) + 1
        moment = datetime.now(UTC)
        growth: list[float] = []
        levels: list[tuple[int, float, float]] = []
        deadline = time.perf_counter() + seconds
        target = size * 2
        while time.perf_counter() < deadline:
            kind, fields = press(rng)
            doc = ev.make(POST, seq, moment, kind, clock="synced", **fields)
            t0 = time.perf_counter()
            db.insert(doc)
            growth.append((time.perf_counter() - t0) * 1000)
            seq, size = seq + 1, size + 1
            if size >= target:
                tail = growth[-TAIL:]
                levels.append((size, pct(tail, 50), pct(tail, 99)))
                target *= 2
        tail = growth[-TAIL:] if growth else lat[-TAIL:]
        largest = len(db)
    finally:
        db.close()
    return {
        "lat": lat,
        "bytes_per_event": bytes_per_event,
        "largest": largest,
        "largest_p50": pct(tail, 50),
        "largest_p99": pct(tail, 99),
        "growth_inserts": len(growth),
        "levels": levels,
        "file_bytes": (data_dir / "db.json").stat().st_size,
    }


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--samples", type=int, default=1000, help="appends measured per phase")
    parser.add_argument("--baseline-seconds", type=float, default=60.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20,000 events over 30 days, 200 samples, 5 s baseline",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dirs")
    parser.add_argument("--dir", help="where to make the temporary data dirs (a disk, not RAM)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--generate", nargs=3, metavar=("DIR", "N", "DAYS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.generate:
        out = generate(
            Path(args.generate[0]), int(args.generate[1]), int(args.generate[2]), args.seed
        )
        print(json.dumps(out))
        return 0

    if args.quick:
        args.large_events, args.days, args.samples = 20_000, 30, 200
        args.baseline_seconds = 5.0
    base = pick_base(args.dir)
    mount, fstype, source = filesystem_of(base)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    print(f"data dirs under {base} (filesystem {fstype} on {source}, mounted at {mount})")
    print(
        f"quantiles: {QUANTILE_METHOD}; latency = perf_counter around store.append "
        f"(event made, written, fdatasync'd)",
        flush=True,
    )

    dirs: list[Path] = []

    def fresh(name: str) -> Path:
        dirs.append(Path(tempfile.mkdtemp(prefix=f"posko-bench-{name}-", dir=base)))
        return dirs[-1]

    try:
        small = phase_small(fresh("small"), args.samples, rng)
        try:
            large = phase_large(
                fresh("large"),
                args.large_events,
                args.days,
                args.samples,
                args.seed + 1,
                rng,
                small["store"],
            )
        finally:
            small["store"].close()
        small["lat"] = large["small_lat"]
        small["events"] += large["small_events"]
        s50, s99 = pct(small["lat"], 50), pct(small["lat"], 99)
        print(
            f"small history ({HISTORY:,} events): p50 {s50:.2f} ms, p99 {s99:.2f} ms "
            f"over {len(small['lat']):,} appends, interleaved with the large store's "
            f"(building the history: p50 {pct(small['history_lat'], 50):.2f} ms); "
            f"{small['bytes_per_event']:.0f} bytes written per event",
            flush=True,
        )
        gen = large["gen"]
        l50, l99 = pct(large["lat"], 50), pct(large["lat"], 99)
        print(
            f"large history generated: {gen['events']:,} events over {gen['days']} days "
            f"({gen['bytes'] / 2**20:.1f} MiB, today's active segment "
            f"{gen['active_events']:,} events) in {large['generate_seconds']:.1f} s "
            f"(child process, its peak RSS {gen['rss_peak_mb']:.0f} MiB)"
        )
        print(
            f"store opened in {large['open_seconds'] * 1000:.0f} ms; index.json "
            f"{'REWRITTEN (history rescanned)' if large['index_rewritten'] else 'untouched'}"
            f"; counts {'match' if large['count_ok'] else 'DO NOT MATCH'}"
        )
        print(
            f"large history ({gen['events']:,} events, {gen['days']} days): p50 {l50:.2f} ms,"
            f" p99 {l99:.2f} ms over {len(large['lat']):,} appends (after {WARMUP} untimed)"
        )
        print(
            f"first append after midnight (closes the day, rewrites index.json of "
            f"{gen['days'] - 1} segments): {large['roll_ms']:.2f} ms"
        )
        print(
            f"bytes written per event: {large['bytes_per_event']:.0f} "
            f"(/proc/self/io write_bytes; data pages only, the ext4 journal is written by "
            f"jbd2 and not counted); RSS {large['rss_mb']:.1f} MiB",
            flush=True,
        )

        base_run = phase_baseline(
            fresh("tinydb"), small["events"], args.samples, args.baseline_seconds, rng
        )
        b50, b99 = pct(base_run["lat"], 50), pct(base_run["lat"], 99)
        print(
            f"stock TinyDB (JSONStorage) at {HISTORY:,} events: p50 {b50:.2f} ms, "
            f"p99 {b99:.2f} ms over {len(base_run['lat']):,} inserts; "
            f"{base_run['bytes_per_event']:.0f} bytes written per insert"
        )
        for size, p50, p99 in base_run["levels"]:
            print(f"  stock TinyDB grown to {size:,} events: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        print(
            f"stock TinyDB after {args.baseline_seconds:g} s of growth: "
            f"{base_run['largest']:,} events ({base_run['file_bytes'] / 2**20:.1f} MiB), "
            f"p99 {base_run['largest_p99']:.2f} ms over the last "
            f"{min(TAIL, base_run['growth_inserts'] or len(base_run['lat']))} inserts"
        )
        print(
            "  (stock JSONStorage rewrites the whole file in place on every insert: it "
            "flushes and fsyncs, but a cut mid-rewrite tears the file and its final truncate "
            "is not synced; it never fsyncs a directory. The store here also fsyncs a new "
            "day's segment and its directory.)"
        )

        ratio = l99 / s99 if s99 else float("inf")
        print(f"ratio large p99 / small p99: {ratio:.2f}")
        targets = [
            (f"large_p99_ms {l99:.2f} <= {TARGET_LARGE_P99_MS:g}", l99 <= TARGET_LARGE_P99_MS),
            (
                f"large_p99_ms {l99:.2f} <= {TARGET_RATIO} x small_p99_ms {s99:.2f}",
                ratio <= TARGET_RATIO,
            ),
            (
                f"bytes_written_per_event {large['bytes_per_event']:.0f} <= {TARGET_BYTES}",
                large["bytes_per_event"] <= TARGET_BYTES,
            ),
            (
                f"rss_mb {large['rss_mb']:.1f} <= {TARGET_RSS_MB:g}",
                large["rss_mb"] <= TARGET_RSS_MB,
            ),
        ]
        for text, ok in targets:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        wall = time.perf_counter() - started
        print(f"wall time {wall:.1f} s", flush=True)
        result = {
            "small_p50_ms": round(s50, 4),
            "small_p99_ms": round(s99, 4),
            "large_p50_ms": round(l50, 4),
            "large_p99_ms": round(l99, 4),
            "large_over_small_p99": round(ratio, 3),
            "bytes_written_per_event": round(large["bytes_per_event"], 1),
            "small_bytes_written_per_event": round(small["bytes_per_event"], 1),
            "rss_mb": round(large["rss_mb"], 2),
            "baseline_small_p50_ms": round(b50, 4),
            "baseline_small_p99_ms": round(b99, 4),
            "baseline_bytes_written_per_event": round(base_run["bytes_per_event"], 1),
            "baseline_largest_events": base_run["largest"],
            "baseline_largest_p50_ms": round(base_run["largest_p50"], 4),
            "baseline_largest_p99_ms": round(base_run["largest_p99"], 4),
            "baseline_seconds": args.baseline_seconds,
            "large_history_events": gen["events"],
            "large_history_days": gen["days"],
            "large_history_bytes": gen["bytes"],
            "large_active_events": gen["active_events"],
            "generate_seconds": round(large["generate_seconds"], 2),
            "open_seconds": round(large["open_seconds"], 4),
            "index_rewritten_on_open": large["index_rewritten"],
            "day_roll_append_ms": round(large["roll_ms"], 3),
            "history_ok": large["count_ok"],
            "small_history_events": HISTORY,
            "small_samples": len(small["lat"]),
            "large_samples": len(large["lat"]),
            "baseline_samples": len(base_run["lat"]),
            "quantile_method": QUANTILE_METHOD,
            "filesystem": fstype,
            "targets_passed": all(ok for _, ok in targets),
            "wall_seconds": round(wall, 1),
        }
    finally:
        if args.keep:
            for d in dirs:
                print(f"kept {d}")
        else:
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
