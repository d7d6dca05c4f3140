"""Honest posts' ack latency while one post floods the district with junk (issue 9).

Against Mosquitto on a free loopback port (bench/broker.py) and a real `posko district run`
child (acks signed with a fresh key), as bench/sync.py starts them:
  - 20 honest posts, one MQTT connection each, send live batches (5 new events every
    ~200 ms each); latency = from publishing a batch to receiving its ack;
  - a flooding post, a child process on its own connection at the lowest CPU priority
    (this machine also runs the receiver, the broker and the honest posts), sends junk as
    fast as the broker takes it (QoS 1, --flood-window messages in flight): the decoding
    bombs of bench/payloads.py, mutated batches and random bytes;
  - --rounds rounds of a baseline segment (no flood) then an attack segment, so that both
    see the same machine; the receiver's RSS is sampled every 20 ms during the attacks;
  - first, alone in this process: each bomb's CPU and peak memory in the receiver's checks;
  - after: the quarantine's rows and bytes (the database, read-only) and the receiver's
    own figure for its costliest payload (the last line it logs when stopped).

Run `python bench/hostile.py --dir /dev/shm` (about a minute): with the database on tmpfs,
this shared machine's fsync stalls (100-500 ms, in either segment) do not decide the p99s,
and what is left is what the flood costs the others. The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import threading
import time
import tracemalloc
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.broker import Mosquitto
from bench.child import Child
from bench.payloads import bombs, events, honest_payloads, mutate
from bench.store import in_workdir
from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from district.storage import QuarantineLimits
from sync import codec
from sync.batch import Batch
from sync.signing import keygen

POSTS = 20
FLOODER = "flood"
BATCH_EVENTS = 5
INTERVAL_S = 0.2
TARGET_RATIO = 2.0
TARGET_RSS_MB = 64.0
TARGET_CPU_MS = 100.0
LIMITS = QuarantineLimits()
# Each kept row: the payload's prefix, its topic (≤ 300) and its reason (≤ 500).
QUARANTINE_CAP = LIMITS.rows * (LIMITS.payload_bytes + 800)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the posts -------------------------------------------------------------------------------


class HonestPost:
    """One post on its own connection: publishes a batch of new events when told, and
    records how long each took to be acknowledged."""

    def __init__(self, post: str, port: int, seed: int) -> None:
        self.post = post
        self.next_seq = 1
        self.seed = seed
        self.sent: dict[tuple[int, int], float] = {}
        self.latencies: list[float] = []
        self.refused = 0
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"posko-{post}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *a: c.subscribe(f"posko/v1/{post}/ack", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"{post} could not subscribe")

    def send(self) -> None:
        first = self.next_seq
        batch = Batch.of(self.post, events(self.post, first, BATCH_EVENTS, self.seed + first))
        self.next_seq += BATCH_EVENTS
        self.sent[(batch.first, batch.last)] = time.perf_counter()
        self.client.publish(f"posko/v1/{self.post}/events", codec.encode(batch), qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        doc = json.loads(message.payload)
        sent = self.sent.pop((doc.get("first"), doc.get("last")), None)
        if doc.get("error"):
            self.refused += 1
        elif sent is not None:
            self.latencies.append((now - sent) * 1000)

    def pending(self) -> int:
        return len(self.sent)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def live(posts: list[HonestPost], seconds: float, rng: random.Random) -> list[float]:
    """Every post sends a batch every INTERVAL_S (staggered) for `seconds`; the latencies."""
    for post in posts:
        post.latencies = []
    start = time.perf_counter()
    due = sorted((start + rng.random() * INTERVAL_S, i) for i in range(len(posts)))
    while due and due[0][0] < start + seconds:
        at, i = due.pop(0)
        time.sleep(max(0.0, at - time.perf_counter()))
        posts[i].send()
        due.append((at + INTERVAL_S * rng.uniform(0.8, 1.2), i))
        due.sort()
    deadline = time.perf_counter() + 30
    while any(p.pending() for p in posts) and time.perf_counter() < deadline:
        time.sleep(0.01)
    unanswered = sum(p.pending() for p in posts)
    if unanswered:
        print(f"  {unanswered} honest batches were never acknowledged", flush=True)
    return [ms for p in posts for ms in p.latencies]


def flood(port: int, window: int) -> int:
    """The flooding post (a child process): junk at full speed while told "on" on stdin,
    until "quit"; prints how many payloads and bytes it sent.

    At the lowest CPU priority: on the bench's one machine it would otherwise take the
    receiver's and the honest posts' CPU, which a post on its own Pi cannot do."""
    os.nice(19)
    rng = random.Random(13)
    honest = [p for _, p in honest_payloads(FLOODER, 5)]
    hostile = list(bombs(FLOODER).values())
    mutated = [mutate(rng, rng.choice(honest), rng.choice(honest), hostile)[1] for _ in range(500)]
    noise = [rng.randbytes(rng.randint(1, 4096)) for _ in range(200)]
    junk = [*hostile, *mutated, *noise]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"posko-{FLOODER}", protocol=mqtt.MQTTv5
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    on, done = threading.Event(), threading.Event()

    def commands() -> None:
        for line in sys.stdin:
            if line.strip() == "on":
                on.set()
            elif line.strip() == "off":
                on.clear()
            else:
                break
        done.set()
        on.set()

    threading.Thread(target=commands, daemon=True).start()
    print("ready", flush=True)
    sent = sent_bytes = 0
    topic = f"posko/v1/{FLOODER}/events"
    while on.wait() and not done.is_set():
        info = None
        for _ in range(window):
            payload = rng.choice(junk)
            info = client.publish(topic, payload, qos=1)
            sent, sent_bytes = sent + 1, sent_bytes + len(payload)
        assert info is not None
        info.wait_for_publish(10)  # as fast as the broker takes them, not faster
    client.disconnect()
    client.loop_stop()
    print(f"{sent} {sent_bytes}", flush=True)
    return 0


class Flooder:
    """The flooding child, switched on and off between segments."""

    def __init__(self, port: int, window: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--flood", str(port), str(window)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the flooder did not start")

    def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stop(self) -> tuple[int, int]:
        """Stop it (again: the same figures): how many payloads and bytes it sent."""
        if self.process.returncode is None:
            self.tell("quit")
            out, _ = self.process.communicate(timeout=60)
            self._sent = tuple(map(int, out.split()))
        sent, sent_bytes = self._sent
        return sent, sent_bytes


class RssSampler:
    """The receiver's RSS every 20 ms while `on`; the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.highest = 0.0
        self.on = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            if self.on.is_set():
                self.highest = max(self.highest, rss_mb(self.pid))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# -- the run ---------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if values else 0.0


def payload_costs(work: Path) -> dict[str, tuple[float, float]]:
    """Each bomb through the receiver's checks in this process, before anything else runs:
    (least CPU ms of three, peak MiB of Python memory)."""
    costs = {}
    with SQLiteStorage(work / "alone.db") as db:
        receiver = Receiver(db)
        for name, payload in bombs().items():
            cpu = []
            for _ in range(3):
                started = time.thread_time()
                receiver.examine(f"posko/v1/{FLOODER}/events", payload)
                cpu.append((time.thread_time() - started) * 1000)
            tracemalloc.start()
            receiver.examine(f"posko/v1/{FLOODER}/events", payload)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            costs[name] = (min(cpu), peak)
    worst = sorted(costs.items(), key=lambda kv: -kv[1][0])[:4]
    print(
        "each bomb alone (CPU, memory): "
        + ", ".join(f"{n} {c:.0f} ms {m:.0f} MiB" for n, (c, m) in worst)
        + f", ... ({len(costs)} bombs)",
        flush=True,
    )
    return costs


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    costs = payload_costs(work)
    key, _ = keygen(work / "keys")
    db_path = work / "district.db"
    baseline: list[float] = []
    attacked: list[float] = []
    with Mosquitto(work / "broker") as broker:
        receiver = Child(
            [sys.executable, "-m", "posko.cli", "district", "run", "--db", str(db_path),
             "--broker", broker.address, "--signing-key", str(key)]
        )  # fmt: skip
        try:
            receiver.wait_line("subscribed", 30)
            pid = receiver.process.pid
            posts = [HonestPost(f"honest-{i:02d}", broker.port, i * 1000) for i in range(POSTS)]
            flooder = Flooder(broker.port, args.flood_window)
            print(
                f"{POSTS} honest posts, a batch of {BATCH_EVENTS} events every "
                f"{INTERVAL_S * 1000:.0f} ms each; {args.rounds} rounds of {args.seconds:g} s "
                f"without, then with, a flood ({args.flood_window} in flight)",
                flush=True,
            )
            live(posts, 2.0, rng)  # warm-up: connections, the database's first pages
            before = rss_mb(pid)
            sampler = RssSampler(pid)
            for _ in range(args.rounds):
                baseline += live(posts, args.seconds, rng)
                flooder.tell("on")
                sampler.on.set()
                time.sleep(0.5)  # the flood is under way
                attacked += live(posts, args.seconds, rng)
                sampler.on.clear()
                flooder.tell("off")
                time.sleep(0.5)  # what the flood left queued is shed or refused
            flood_sent, flood_bytes = flooder.stop()
            sampler.close()
            print(
                f"baseline: {len(baseline)} acks, p50 {statistics.median(baseline):.1f} ms, "
                f"p99 {p99(baseline):.1f} ms\nunder attack: {len(attacked)} acks, p50 "
                f"{statistics.median(attacked):.1f} ms, p99 {p99(attacked):.1f} ms; the flood "
                f"sent {flood_sent:,} payloads ({flood_bytes / 2**20:,.0f} MiB)",
                flush=True,
            )
            refused = sum(p.refused for p in posts)
            for post in posts:
                post.close()
        finally:
            log = receiver.stop()
    slowest = re.findall(r"slowest payload ([\d.]+) ms CPU", log)
    shed = re.findall(r"(\d+) shed unread", log)
    with SQLiteStorage(db_path, read_only=True) as db:
        rows, kept = db.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload) + length(topic) + length(reason)), 0)"
            " FROM quarantine WHERE post = ?",
            (FLOODER,),
        ).fetchone()
        counted = db.quarantine_counts().get(FLOODER, 0)
        stored = db.count()
    result = {
        "honest_ack_p99_ms": round(p99(baseline), 1),
        "honest_ack_p99_under_attack_ms": round(p99(attacked), 1),
        "honest_ack_p50_ms": round(statistics.median(baseline), 1),
        "honest_ack_p50_under_attack_ms": round(statistics.median(attacked), 1),
        "honest_acks": len(baseline) + len(attacked),
        "honest_refused": refused,
        "max_rss_growth_mb": round(max(sampler.highest - before, 0.0), 1),
        "receiver_rss_before_attack_mb": round(before, 1),
        "max_payload_cpu_ms": round(max(c for c, _ in costs.values()), 1),
        "max_payload_memory_mb": round(max(m for _, m in costs.values()), 1),
        "receiver_slowest_payload_cpu_ms": round(float(slowest[-1]), 1) if slowest else None,
        "quarantine_bytes_after_flood": kept,
        "quarantine_rows_after_flood": rows,
        "quarantine_cap_bytes": QUARANTINE_CAP,
        "flood_payloads_sent": flood_sent,
        "flood_payloads_refused": counted,
        "payloads_shed_unread": int(shed[-1]) if shed else None,
        "flood_window": args.flood_window,
        "events_stored": stored,
        "seconds_per_segment": args.seconds,
        "rounds": args.rounds,
    }
    return report(result)


def report(result: dict[str, Any]) -> dict[str, Any]:
    base, attacked = result["honest_ack_p99_ms"], result["honest_ack_p99_under_attack_ms"]
    cpu, seen = result["max_payload_cpu_ms"], result["receiver_slowest_payload_cpu_ms"]
    targets = [
        (f"honest p99 under attack {attacked} ms <= {TARGET_RATIO:g} x {base} ms",
         attacked <= TARGET_RATIO * base),
        (f"receiver RSS growth {result['max_rss_growth_mb']} MB <= {TARGET_RSS_MB:g} MB",
         result["max_rss_growth_mb"] <= TARGET_RSS_MB),
        (f"costliest payload {cpu} ms CPU (the receiver saw {seen} ms) <= {TARGET_CPU_MS:g} ms",
         cpu <= TARGET_CPU_MS and (seen or 0) <= TARGET_CPU_MS),
        (f"costliest payload {result['max_payload_memory_mb']} MiB of memory <= "
         f"{TARGET_RSS_MB:g} MiB", result["max_payload_memory_mb"] <= TARGET_RSS_MB),
        (f"quarantine {result['quarantine_bytes_after_flood']:,} bytes <= cap "
         f"{QUARANTINE_CAP:,}", result["quarantine_bytes_after_flood"] <= QUARANTINE_CAP),
        ("every honest batch acknowledged, none refused",
         result["honest_refused"] == 0 and result["events_stored"] > 0),
    ]  # fmt: skip
    for text, ok in targets:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return {**result, "targets_passed": all(ok for _, ok in targets)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each segment")
    parser.add_argument("--rounds", type=int, default=4, help="baseline + attack segments")
    parser.add_argument(
        "--flood-window",
        type=int,
        default=20,
        metavar="N",
        help="flood messages in flight (1: each waits for the broker's PUBACK; default 20)",
    )
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--dir", help="where to make the temporary directory (a disk)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--flood", nargs=2, metavar=("PORT", "WINDOW"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.flood:
        return flood(int(args.flood[0]), int(args.flood[1]))
    return in_workdir("posko-bench-hostile-", args.dir, args.keep, lambda work: run(args, work))


if __name__ == "__main__":
    sys.exit(main())
