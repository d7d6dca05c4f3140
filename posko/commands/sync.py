"""The `posko sync` and `posko district ...` commands, and the worker inside `posko run`.

`posko.cli` registers these; the work happens here so that the CLI file stays a table of
contents. Exit status as everywhere: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edge.config import Config
from edge.store import EventStore
from sensors.errors import DataDirBusy, PoskoError
from sync.options import SyncOptions

if TYPE_CHECKING:  # paho is imported only by the commands that talk MQTT
    from sync.worker import SyncWorker

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


def add_parsers(commands: Any) -> None:
    """The `sync` and `district` subcommands (the district's own options live there)."""
    from district.cli import add_district_parser

    one = commands.add_parser(
        "sync",
        help="send the events waiting for the district now (one-shot, e.g. a hotspot)",
        description="Connect to the district broker and send every event not yet "
        "acknowledged, printing progress (sent, acknowledged, rate) to stderr. "
        "It stops once everything is acknowledged, at --timeout, or on Ctrl-C. "
        "With --until-drained, anything short of drained exits with status 1. "
        "A running station syncs by itself; stop it first to sync by hand.",
    )
    one.add_argument(
        "--broker",
        metavar="HOST:PORT",
        help="district MQTT broker (default: the mqtt.broker setting)",
    )
    one.add_argument(
        "--until-drained",
        action="store_true",
        help="exit 0 only once every event is acknowledged, else 1",
    )
    one.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    one.set_defaults(fail=one.error)
    add_district_parser(commands)


def start_worker(post: Any, services: ExitStack) -> SyncWorker | None:
    """The sync thread of `posko run`, woken by the station after each durable event."""
    from sync.worker import SyncWorker

    config: Config = post.config
    if not config["mqtt.broker"]:
        log.info("sync is off: mqtt.broker is not set")
        return None
    worker = SyncWorker(post.store, SyncOptions.from_config(config), clock_state=post.clock.state)
    services.callback(worker.close)
    post.station.subscribe(worker.notify)
    services.callback(post.station.unsubscribe, worker.notify)
    worker.start()
    log.info("sync to %s started; %d events waiting", config["mqtt.broker"], post.store.pending)
    return worker


def sync_once(config: Config, args: argparse.Namespace) -> int:
    from edge.clock import SystemClock
    from sync.worker import SyncWorker

    broker = args.broker or config["mqtt.broker"]
    if not broker:
        args.fail("give the district broker with --broker HOST:PORT (or set mqtt.broker)")
    if args.timeout is not None and args.timeout <= 0:
        args.fail("--timeout must be more than 0 seconds")
    config = config.replace(mqtt__broker=broker)
    options = SyncOptions.from_config(config)
    data_dir = Path(config["data.dir"])
    if not data_dir.is_dir():
        raise PoskoError(f"no data directory at {data_dir}")
    try:
        store = EventStore(data_dir, config["post.id"], config["time.zone"])
    except DataDirBusy as e:
        who = f"posko process {e.pid}" if e.pid else "another posko process"
        raise PoskoError(
            f"the station ({who}) is running on {data_dir} and syncs by itself when "
            "mqtt.broker is set (`posko status` shows what waits); to sync by hand, stop it "
            "first (sudo systemctl stop posko)"
        ) from None
    with store:
        if store.pending == 0:
            print(
                f"posko sync: nothing waiting (acknowledged up to {store.acked})", file=sys.stderr
            )
            return 0
        with SyncWorker(store, options, clock_state=SystemClock().state) as worker:
            return watch(worker, args.until_drained, args.timeout, sys.stderr)


def watch(worker: SyncWorker, until_drained: bool, timeout: float | None, out: TextIO) -> int:
    """Print progress until drained, a fatal error, the timeout or Ctrl-C; the exit status."""
    store = worker.store
    start, acked0 = time.monotonic(), store.acked
    print(
        f"posko sync: {store.pending} events waiting for {worker.options.link.address}",
        file=out,
        flush=True,
    )
    outcome = "interrupted"
    try:
        while True:
            if worker.wait_drained(PROGRESS_EVERY_S):
                outcome = "drained"
                break
            if worker.fatal_error:
                outcome = "failed"
                break
            if timeout is not None and time.monotonic() - start >= timeout:
                outcome = "timeout"
                break
            print(progress(worker, start, acked0), file=out, flush=True)
    except KeyboardInterrupt:
        pass
    print(progress(worker, start, acked0), file=out, flush=True)
    messages = {
        "drained": f"every event is acknowledged (up to seq {store.acked})",
        "failed": f"stopped: {worker.fatal_error}",
        "timeout": f"timed out after {timeout:g} s with {store.pending} events waiting"
        if timeout
        else "",
        "interrupted": f"interrupted with {store.pending} events waiting",
    }
    print(f"posko sync: {messages[outcome]}", file=out, flush=True)
    if outcome == "drained":
        return 0
    return 1 if until_drained or outcome == "failed" else 0


def progress(worker: SyncWorker, start: float, acked0: int) -> str:
    store, stats = worker.store, worker.outbox.stats
    elapsed = max(time.monotonic() - start, 1e-6)
    rate = (store.acked - acked0) / elapsed
    line = (
        f"posko sync: sent {stats.events} events in {stats.batches} batches "
        f"({stats.resent} resent, {stats.payload_bytes} bytes), acknowledged up to "
        f"{store.acked} of {store.last_seq} ({store.pending} waiting), {rate:.0f} events/s, "
        f"{worker.state}"
    )
    if worker.last_error and worker.state != "online":
        line += f" ({worker.last_error})"
    return line
