"""The district under a kabupaten's load (issue 13): live small batches and a reconnect storm,
for each configuration in one run, against a real Mosquitto and (when installed) PostgreSQL.

Configurations (--configs): `baseline` one receiver on SQLite, a commit per batch
(--group-commit-max 1); `sqlite` one receiver on SQLite with group commit; `postgres` one
receiver with group commit on PostgreSQL (the last line's top-level figures); `postgres_2`
two receivers in one $share group on PostgreSQL. Each gets a fresh broker and database.
  - live: --posts posts (bench/district_posts.py worker processes, few MQTT connections
    each) send 5-event batches as soon as the last is acknowledged, for --seconds; then the
    same with each post paced so that the offered load is half the rate measured;
  - storm: --posts other posts with --storm-events each send them at once in 500-event
    batches; drained when every post is acknowledged to its last seq; then exactly once:
    every post's count in the database is what it was acknowledged for.
Run `python bench/district.py` (or `--configs baseline,sqlite`). The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import math
import multiprocessing
import os
import re
import statistics
import subprocess
import time
import urllib.request
from contextlib import ExitStack
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import postgres
from bench.broker import Mosquitto
from bench.child import Child
from bench.district_posts import serve
from bench.district_report import report
from bench.ports import free_port
from bench.store import in_workdir
from district.backends import open_storage
from district.metrics import PREFIX
from district.storage import UnsupportedStorage
from sync.signing import keygen

CONFIGS = {  # name: (backend, receivers, extra `posko district run` options)
    "baseline": ("sqlite", 1, ["--group-commit-max", "1"]),
    "sqlite": ("sqlite", 1, []),
    "postgres": ("postgresql", 1, []),
    "postgres_2": ("postgresql", 2, []),
}
BATCH_EVENTS = 5
STORM_BATCH = 500


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(receivers: list[Child]) -> dict[str, float]:
    """Commits, seconds spent committing and batches stored, from the receivers' /metrics."""
    found = {"commits": 0.0, "commit_s": 0.0, "batches": 0.0}
    names = {f"{PREFIX}_commit_latency_seconds_count": "commits",
             f"{PREFIX}_commit_latency_seconds_sum": "commit_s",
             f"{PREFIX}_batches_total": "batches"}  # fmt: skip
    for child in receivers:
        url = f"http://127.0.0.1:{child.metrics_port}/metrics"  # type: ignore[attr-defined]
        with urllib.request.urlopen(url, timeout=10) as page:
            text = page.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in names:
                    found[names[sample.name]] += sample.value
    return found


def last_figure(logs: list[str], pattern: str) -> int:
    """A figure of the receivers' last reports (each holds its totals), summed."""
    return sum(int(([0, *re.findall(pattern, log)])[-1]) for log in logs)


def quantile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class Posts:
    """Worker processes carrying the simulated posts (bench/district_posts.py)."""

    def __init__(self, stack: ExitStack, port: int, names: list[str], args: Any, pub: Path):
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        share = math.ceil(len(names) / args.workers)
        for i in range(args.workers):
            mine = names[i * share : (i + 1) * share]
            if not mine:
                continue
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=serve,
                args=(theirs, port, mine, args.connections, str(pub), args.verify_every),
                daemon=True,
            )
            process.start()
            stack.callback(process.kill)
            self.pipes.append(ours)
        for pipe in self.pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                raise RuntimeError("a worker of simulated posts did not start")

    def ask(self, command: str, *args: Any, timeout: float = 900) -> list[Any]:
        for pipe in self.pipes:
            pipe.send((command, args))
        answers = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise RuntimeError(f"the simulated posts did not answer {command!r}")
            answers.append(pipe.recv())
        return answers

    def close(self) -> None:
        self.ask("close", timeout=30)


def prefix(profile: str | None, name: str) -> list[str]:
    """How to start `posko`: plainly, or under cProfile (bench/district_profile.py)."""
    if profile is None:
        return [sys.executable, "-m", "posko.cli"]
    out = Path(profile) / f"receiver-{name}.txt"
    return [sys.executable, str(Path(__file__).with_name("district_profile.py")), str(out)]


def start_receivers(
    stack: ExitStack,
    spec: tuple[str, int, list[str]],
    db: str,
    broker: Mosquitto,
    key: Path,
    profile: str | None,
) -> list[Child]:
    _, count, extra = spec
    receivers = []
    for i in range(count):
        share = ["--share", "bench"] if count > 1 else []
        port = free_port()
        child = Child(
            [*prefix(profile, f"{db.rsplit('/', 1)[-1]}-{i}"), "district", "run", "--db", db,
             "--broker", broker.address, "--signing-key", str(key), "--name", f"bench{i}",
             "--metrics", f"127.0.0.1:{port}", *share, *extra]
        )  # fmt: skip
        child.metrics_port = port  # type: ignore[attr-defined]
        receivers.append(child)
        stack.callback(child.stop)
    for child in receivers:
        child.wait_line("subscribed", 60)
    return receivers


def live_phase(
    posts: Posts, receivers: list[Child], seconds: float, interval: float
) -> dict[str, Any]:
    """One live segment: batches/s, ack quantiles, CPU of the bench and the receivers."""
    before = [cpu_s(r.process.pid) for r in receivers]
    commits = scrape(receivers)
    answers = posts.ask("live", seconds, interval, BATCH_EVENTS)
    receiver_cpu = sum(cpu_s(r.process.pid) for r in receivers) - sum(before)
    commits = {k: v - commits[k] for k, v in scrape(receivers).items()}
    latencies = [ms for a in answers for ms in a["latencies"]]
    acked = {post: seq for a in answers for post, seq in a["acked"].items()}
    return {
        "batches_per_s": len(latencies) / seconds,
        "ack_p50_ms": quantile(latencies, 50),
        "ack_p99_ms": quantile(latencies, 99),
        "bench_cores": sum(a["cpu_s"] for a in answers) / seconds,
        "receiver_cores": receiver_cpu / seconds,
        "unacked": sum(a["unacked"] for a in answers),
        # Of the receivers' storage stage: batches per commit, and the share of the time
        # it spent storing, summed over receivers (near 1 each: the storage is what limits).
        "batches_per_commit": commits["batches"] / max(commits["commits"], 1),
        "commit_ms": 1000 * commits["commit_s"] / max(commits["commits"], 1),
        "storing_share": commits["commit_s"] / seconds,
        "acked": acked,
    }


def run_config(name: str, args: Any, work: Path, key: Path, db: str) -> dict[str, Any]:
    spec = CONFIGS[name]
    pub = key.with_suffix(".pub")
    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(work / name / "broker"))
        receivers = start_receivers(stack, spec, db, broker, key, args.profile)
        try:
            return measure(name, args, stack, broker, receivers, db, pub)
        except BaseException:
            for child in receivers:
                print(f"--- {name} receiver stderr ---\n{child.stop()[-3000:]}", flush=True)
            raise


def measure(name, args, stack, broker, receivers, db, pub) -> dict[str, Any]:
    live = Posts(stack, broker.port, [f"live-{i:04d}" for i in range(args.posts)], args, pub)
    per_post = math.ceil(args.prebuilt * args.seconds / args.posts)
    live.ask("prepare", per_post, BATCH_EVENTS)
    full = live_phase(live, receivers, args.seconds, 0.0)
    print(f"{name}: live {full['batches_per_s']:,.0f} batches/s, p50 {full['ack_p50_ms']:.0f} ms"
          f", p99 {full['ack_p99_ms']:.0f} ms; {full['batches_per_commit']:.1f} batches per commit "
          f"of {full['commit_ms']:.1f} ms, storing {full['storing_share']:.0%} of the time; "
          f"bench {full['bench_cores']:.2f} cores, "
          f"receivers {full['receiver_cores']:.2f} cores", flush=True)  # fmt: skip
    half_rate = full["batches_per_s"] / 2
    live.ask("prepare", math.ceil(half_rate * args.seconds / args.posts) + 1, BATCH_EVENTS)
    half = live_phase(live, receivers, args.seconds, args.posts / max(half_rate, 1.0))
    print(f"{name}: half load {half['batches_per_s']:,.0f} batches/s, p50 "
          f"{half['ack_p50_ms']:.0f} ms, p99 {half['ack_p99_ms']:.0f} ms", flush=True)  # fmt: skip
    stats = live.ask("stats")
    live.close()
    storm_names = [f"storm-{i:04d}" for i in range(args.posts)]
    storm = Posts(stack, broker.port, storm_names, args, pub)
    size = min(STORM_BATCH, args.storm_events)
    storm.ask("prepare", args.storm_events // size, size)
    before = [cpu_s(r.process.pid) for r in receivers]
    commits = scrape(receivers)
    started = time.time()
    answers = storm.ask("storm", args.storm_events, size, 600.0)
    drain = max(a["last_ack"] for a in answers) - started
    storm_cpu = sum(cpu_s(r.process.pid) for r in receivers) - sum(before)
    commits = {k: v - commits[k] for k, v in scrape(receivers).items()}
    stats += storm.ask("stats")
    storm.close()
    storm_acked = {p: s for a in answers for p, s in a["acked"].items()}
    print(f"{name}: storm of {args.posts * args.storm_events:,} events drained in {drain:.2f} s "
          f"(receivers {storm_cpu / drain:.2f} cores, {commits['commits']:.0f} commits of "
          f"{1000 * commits['commit_s'] / max(commits['commits'], 1):.1f} ms, storing "
          f"{commits['commit_s'] / drain:.0%} of the time)", flush=True)  # fmt: skip
    logs = [child.stop() for child in receivers]
    shed, duplicates = (last_figure(logs, f"(\\d+) {what}") for what in ("shed", "dup"))
    once = exactly_once(db, {**full["acked"], **half["acked"]}, storm_acked, args.storm_events)
    return {
        "batches_per_s": round(full["batches_per_s"], 1),
        "events_per_s": round(full["batches_per_s"] * BATCH_EVENTS, 1),
        "ack_p50_ms": round(full["ack_p50_ms"], 1),
        "ack_p99_ms": round(full["ack_p99_ms"], 1),
        "half_batches_per_s": round(half["batches_per_s"], 1),
        "half_ack_p50_ms": round(half["ack_p50_ms"], 1),
        "half_ack_p99_ms": round(half["ack_p99_ms"], 1),
        "storm_drain_s": round(drain, 2),
        "storm_events": args.posts * args.storm_events,
        "exactly_once": once,
        "batches_per_commit": round(full["batches_per_commit"], 1),
        "commit_ms": round(full["commit_ms"], 2),
        "storing_share": round(full["storing_share"], 2),
        "bench_cores": round(full["bench_cores"], 2),
        "receiver_cores": round(full["receiver_cores"], 2),
        "storm_receiver_cores": round(storm_cpu / drain, 2),
        "storm_storing_share": round(commits["commit_s"] / drain, 2),
        "bad_acks": sum(s["bad_acks"] for s in stats),
        "acks_checked": sum(s["checked"] for s in stats),
        "batches_encoded_during_run": sum(s["encoded_late"] for s in stats),
        "unacked_after_live": full["unacked"] + half["unacked"],
        "storm_resent_rounds": max(a["resent_rounds"] for a in answers),
        "receiver_shed": shed,
        "receiver_duplicates": duplicates,
        "backend": CONFIGS[name][0],
        "receivers": CONFIGS[name][1],
    }


def exactly_once(db: str, live: dict[str, int], storm: dict[str, int], backlog: int) -> bool:
    """Every post holds exactly what it was acknowledged for, without a gap or a double."""
    storage = open_storage(db, read_only=True)
    try:
        for post, acked in {**live, **storm}.items():
            if storage.count(post) != acked or storage.contiguous(post) != acked:
                print(f"NOT exactly once: {post} acked {acked}, stored {storage.count(post)}")
                return False
    finally:
        storage.close()
    drained = all(seq == backlog for seq in storm.values())
    if not drained:
        print(f"NOT drained: {sum(s < backlog for s in storm.values())} storm posts short")
    return drained


def database(name: str, backend: str, work: Path, pg: postgres.Postgres | None) -> str | None:
    """A fresh database for one configuration (None: PostgreSQL is not there)."""
    if backend == "sqlite":
        return str(work / f"{name}.db")
    if pg is None:
        return None
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE bench_{name}")
    url = pg.url.rsplit("/", 1)[0] + f"/bench_{name}"
    try:
        open_storage(url).close()
    except UnsupportedStorage as e:
        print(f"PostgreSQL backend missing, {name} skipped: {e}", flush=True)
        return None
    return url


def start_postgres(stack: ExitStack) -> postgres.Postgres | None:
    """A throwaway cluster (in the system's temporary directory, which its own user can
    reach), or None if it does not start."""
    server = postgres.Postgres()
    stack.callback(server.close)
    try:
        return server.start()
    except (OSError, subprocess.SubprocessError) as e:
        print(f"PostgreSQL did not start, its configurations are skipped: {e}", flush=True)
        return None


def run(args: Any, work: Path) -> dict[str, Any]:
    key, _ = keygen(work / "keys")
    names = args.configs.split(",")
    found: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        pg = None
        if any(CONFIGS[n][0] == "postgresql" for n in names):
            if postgres.available():
                pg = start_postgres(stack)
            else:
                print("PostgreSQL is not installed: its configurations are skipped")
        for name in names:
            db = database(name, CONFIGS[name][0], work, pg)
            if db is not None:
                found[name] = run_config(name, args, work, key, db)
    return report(args, found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0, help="of each live segment")
    parser.add_argument("--storm-events", type=int, default=1000, help="backlog of each post")
    parser.add_argument("--workers", type=int, default=2, help="processes simulating posts")
    parser.add_argument("--connections", type=int, default=10, help="MQTT connections each")
    parser.add_argument("--verify-every", type=int, default=10, metavar="N",
                        help="check the signature of every Nth ack (1: all)")  # fmt: skip
    parser.add_argument("--prebuilt", type=float, default=6000.0, metavar="BATCHES_PER_S",
                        help="batches encoded ahead of the live run, per second of it")  # fmt: skip
    parser.add_argument("--profile", metavar="DIR", help="profile each receiver into DIR")
    parser.add_argument("--dir", help="where to make the temporary directory (a disk)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if args.storm_events % min(STORM_BATCH, args.storm_events):
        parser.error(f"--storm-events must be a multiple of {STORM_BATCH} (or less)")
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; known: {', '.join(CONFIGS)}")
    return in_workdir("posko-bench-district-", args.dir, args.keep, lambda work: run(args, work))


if __name__ == "__main__":
    sys.exit(main())
