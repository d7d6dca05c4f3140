"""End-to-end sync (sync/) against a naive one-message-per-event baseline, on a real Mosquitto.

Phases, all against Mosquitto on a free loopback port (bench/broker.py):
  1. a Pi data directory with N varied events (bench/store.py's generator: entries with noisy
     temperatures, exits, re-checks, voids, visitor details, sensor faults, random arrival
     gaps; never repeated records);
  2. sync: the district receiver as a real process (`posko district run`, fresh database),
     the Pi's SyncWorker with default settings through a counting TCP proxy; timed from the
     worker's start until the last ack is back on the Pi; wire bytes = every byte of the Pi's
     MQTT connection both ways (connect, status, batches, acks, PUBACKs, disconnect);
     repeated --repeat times with a fresh broker, database and watermark (medians quoted);
  3. baseline: the same events, one JSON message per event, QoS 1, waiting for each PUBACK,
     into a receiver process that inserts and commits each message; timed until the
     receiver has committed the last one;
  4. ingest alone: the batches encoded first, then Receiver.handle (decode, check, insert,
     commit, ack) on a fresh database in this process.

Run `python bench/sync.py` (or `--quick`). The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import sqlite3
import statistics
import subprocess
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.broker import Mosquitto
from bench.child import Child
from bench.store import filesystem_of, generate, in_workdir
from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from edge.config import defaults
from edge.store import EventStore
from sync import codec
from sync.batch import Batch
from sync.options import SyncOptions
from sync.signing import PRIVATE_NAME, PUBLIC_NAME, keygen
from sync.worker import SyncWorker

ROOT = Path(__file__).resolve().parent.parent
POST = "bench"
# Mosquitto on loopback, no persistence, no cap on queued messages (so that the baseline's
# receiver, which lags, loses nothing), and set_tcp_nodelay as in the shipped district
# config (sync/mosquitto/mosquitto.conf); --stock-broker leaves that out. Both the sync and
# the baseline use the same broker either way.
BROKER = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
log_dest stderr
log_type error
"""
NAIVE_TOPIC = f"posko/v1/{POST}/naive"
TARGET_RATE = 20_000
TARGET_RATIO = 20.0
TARGET_BYTES = 10.0


class CountingProxy:
    """bench/proxy.py in its own process, so that forwarding takes no time from the Pi."""

    def __init__(self, target_port: int) -> None:
        script = ROOT / "bench" / "proxy.py"
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(target_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.port = int(self.process.stdout.readline())
        self.address = f"127.0.0.1:{self.port}"

    def total(self) -> int:
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("count\n")
        self.process.stdin.flush()
        up, down = map(int, self.process.stdout.readline().split())
        return up + down

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)


# -- phase 2: the real thing -------------------------------------------------------------


def sync_run(pi_dir: Path, work: Path, events: int, broker_conf: str) -> dict[str, Any]:
    (pi_dir / "sync.json").unlink(missing_ok=True)
    db_path = work / "district.db"
    if not (work / "keys" / PUBLIC_NAME).exists():
        keygen(work / "keys")
    with Mosquitto(work / "broker", broker_conf) as broker, CountingProxy(broker.port) as proxy:
        receiver = Child(
            [
                sys.executable,
                "-m",
                "posko.cli",
                "district",
                "run",
                "--db",
                str(db_path),
                "--broker",
                broker.address,
                "--signing-key",
                str(work / "keys" / PRIVATE_NAME),
            ]
        )
        try:
            receiver.wait_line("subscribed", 30)
            config = defaults().replace(
                post__id=POST,
                mqtt__broker=proxy.address,
                mqtt__district_keys=[str(work / "keys" / PUBLIC_NAME)],
            )
            with EventStore(pi_dir, POST) as store:
                worker = SyncWorker(store, SyncOptions.from_config(config))
                started = time.perf_counter()
                worker.start()
                drained = worker.wait_drained(600)
                seconds = time.perf_counter() - started
                stats = worker.outbox.stats
                worker.close()
                acked = store.acked
        finally:
            receiver.stop()
        wire = proxy.total()
    with SQLiteStorage(db_path, read_only=True) as db:
        stored, contiguous = db.count(), db.contiguous(POST)
    ok = drained and acked == events and stored == events and contiguous == events
    return {
        "seconds": seconds,
        "events_per_s": events / seconds,
        "wire_bytes": wire,
        "wire_bytes_per_event": wire / events,
        "batches": stats.batches,
        "resent": stats.resent,
        "payload_bytes": stats.payload_bytes,
        "ok": ok,
    }


# -- phase 3: the naive baseline -----------------------------------------------------------


def naive_receiver(db_path: str, port: int, expected: int) -> int:
    """One insert and one commit per message; prints "ready", then "done" at the last one."""
    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (post TEXT, seq INTEGER, doc TEXT, PRIMARY KEY (post, seq))")
    count = 0
    finished = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal count
        event = json.loads(message.payload)
        db.execute("BEGIN")
        db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?)",
            (event["post"], event["seq"], message.payload.decode()),
        )
        db.execute("COMMIT")
        count += 1
        if count >= expected:
            finished.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-receiver")
    client.on_message = on_message
    client.on_subscribe = lambda *a: print("ready", flush=True)
    client.connect("127.0.0.1", port)
    client.subscribe(NAIVE_TOPIC, qos=1)
    client.loop_start()
    finished.wait()
    print("done", flush=True)
    client.disconnect()
    client.loop_stop()
    return 0


def baseline_run(pi_dir: Path, work: Path, limit: int, broker_conf: str) -> dict[str, Any]:
    with EventStore(pi_dir, POST, read_only=True) as store:
        events = store.since(0, limit)
    with Mosquitto(work / "broker", broker_conf) as broker, CountingProxy(broker.port) as proxy:
        receiver = Child(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--naive-receiver",
                str(work / "naive.db"),
                str(broker.port),
                str(len(events)),
            ],
            stream="stdout",
        )
        try:
            receiver.wait_line("ready", 30)
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-pi")
            started = time.perf_counter()
            client.connect("127.0.0.1", proxy.port)
            client.loop_start()
            for event in events:
                client.publish(NAIVE_TOPIC, json.dumps(event), qos=1).wait_for_publish()
            receiver.wait_line("done", 600)
            seconds = time.perf_counter() - started
            client.disconnect()
            client.loop_stop()
        finally:
            receiver.stop()
        wire = proxy.total()
    return {
        "events": len(events),
        "seconds": seconds,
        "events_per_s": len(events) / seconds,
        "wire_bytes_per_event": wire / len(events),
    }


# -- phase 4: ingest alone -----------------------------------------------------------------


def ingest_run(pi_dir: Path, work: Path, batch_events: int) -> dict[str, Any]:
    with EventStore(pi_dir, POST, read_only=True) as store:
        events = store.since(0)
    payloads = [
        codec.encode(Batch.of(POST, events[i : i + batch_events]))
        for i in range(0, len(events), batch_events)
    ]
    topic = f"posko/v1/{POST}/events"
    with SQLiteStorage(work / "ingest.db") as db:
        receiver = Receiver(db)
        started = time.perf_counter()
        for payload in payloads:
            receiver.handle(topic, payload)
        seconds = time.perf_counter() - started
        ok = db.count() == len(events) and db.contiguous(POST) == len(events)
    return {
        "seconds": seconds,
        "events_per_s": len(events) / seconds,
        "ok": ok,
        "payload_bytes_per_event": sum(map(len, payloads)) / len(events),
    }


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=70, help="days the backlog spreads over")
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs (median)")
    parser.add_argument("--baseline-events", type=int, help="default: the whole backlog")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 20,000 events, 2 repeats, 3,000 baseline events",
    )
    parser.add_argument("--dir", help="where to make the temporary directories (a disk)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--stock-broker",
        action="store_true",
        help="leave out set_tcp_nodelay (a stock Mosquitto), for sync and baseline alike",
    )
    parser.add_argument(
        "--naive-receiver", nargs=3, metavar=("DB", "PORT", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.naive_receiver:
        db, port, n = args.naive_receiver
        return naive_receiver(db, int(port), int(n))
    if args.quick:
        args.events, args.days, args.repeat = 20_000, 15, 2
        args.baseline_events = args.baseline_events or 3000
    return in_workdir("posko-bench-sync-", args.dir, args.keep, lambda work: run(args, work))


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    _, fstype, source = filesystem_of(work)
    print(f"work dir {work} (filesystem {fstype} on {source}); mosquitto on loopback", flush=True)
    pi_dir = work / "pi"
    conf = BROKER + ("" if args.stock_broker else "set_tcp_nodelay true\n")
    print(f"broker: Mosquitto{' (stock)' if args.stock_broker else ' with set_tcp_nodelay'}")
    gen = generate(pi_dir, args.events, args.days, args.seed)
    print(
        f"backlog: {gen['events']:,} events over {gen['days']} days "
        f"({gen['bytes'] / 2**20:.1f} MiB of journal) in {gen['seconds']:.1f} s",
        flush=True,
    )
    runs = [sync_runs(pi_dir, work, args.events, conf, i) for i in range(args.repeat)]
    ingest = ingest_run(pi_dir, work, defaults()["sync.batch_events"])
    print(
        f"ingest alone: {ingest['events_per_s']:,.0f} events/s "
        f"({ingest['payload_bytes_per_event']:.2f} payload bytes/event)",
        flush=True,
    )
    base = baseline_run(pi_dir, work / "baseline", args.baseline_events or args.events, conf)
    print(
        f"naive baseline ({base['events']:,} events, one JSON message each, QoS 1, wait for "
        f"each PUBACK, one commit each): {base['events_per_s']:,.0f} events/s, "
        f"{base['wire_bytes_per_event']:.1f} wire bytes/event",
        flush=True,
    )
    return report(args, runs, ingest, base, fstype)


def sync_runs(pi_dir: Path, work: Path, events: int, conf: str, i: int) -> dict[str, Any]:
    r = sync_run(pi_dir, work / f"run{i}", events, conf)
    print(
        f"sync run {i + 1}: {r['events_per_s']:,.0f} events/s ({r['seconds']:.2f} s), "
        f"{r['wire_bytes_per_event']:.2f} wire bytes/event ({r['wire_bytes']:,} bytes, "
        f"{r['batches']} batches, {r['resent']} resent), "
        f"{'all acknowledged, stored once, no gap' if r['ok'] else 'INCOMPLETE'}",
        flush=True,
    )
    return r


def report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    ingest: dict[str, Any],
    base: dict[str, Any],
    fstype: str,
) -> dict[str, Any]:
    """PASS/FAIL lines for the targets, and the figures of the last line (medians of runs)."""
    rate = statistics.median(r["events_per_s"] for r in runs)
    wire = statistics.median(r["wire_bytes_per_event"] for r in runs)
    ratio = rate / base["events_per_s"]
    slowest = min(r["events_per_s"] for r in runs) / base["events_per_s"]  # every run holds
    targets = [
        (f"events_per_s {rate:,.0f} >= {TARGET_RATE:,}", rate >= TARGET_RATE),
        (f"events_per_s / baseline {ratio:.1f} >= {TARGET_RATIO:g}", ratio >= TARGET_RATIO),
        (f"slowest run / baseline {slowest:.1f} >= {TARGET_RATIO:g}", slowest >= TARGET_RATIO),
        (f"wire_bytes_per_event {wire:.2f} <= {TARGET_BYTES:g}", wire <= TARGET_BYTES),
        ("every run complete, exactly once", all(r["ok"] for r in runs) and ingest["ok"]),
    ]
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return {
        "events_per_s": round(rate, 1),
        "baseline_events_per_s": round(base["events_per_s"], 1),
        "wire_bytes_per_event": round(wire, 3),
        "baseline_wire_bytes_per_event": round(base["wire_bytes_per_event"], 2),
        "ingest_events_per_s": round(ingest["events_per_s"], 1),
        "speedup": round(ratio, 2),
        "min_speedup": round(slowest, 2),
        "events": args.events,
        "runs_events_per_s": [round(r["events_per_s"], 1) for r in runs],
        "runs_wire_bytes_per_event": [round(r["wire_bytes_per_event"], 3) for r in runs],
        "batch_events": defaults()["sync.batch_events"],
        "window": defaults()["sync.window"],
        "baseline_events": base["events"],
        "payload_bytes_per_event": round(ingest["payload_bytes_per_event"], 3),
        "broker_tcp_nodelay": not args.stock_broker,
        "filesystem": fstype,
        "targets_passed": all(ok for _, ok in targets),
    }


if __name__ == "__main__":
    sys.exit(main())
