"""`posko sync`: send what waits for the district now, by hand (a hotspot, a visit to town).

A running station syncs by itself (posko/runtime.py); this command needs the data directory
to itself. Exit status as everywhere: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import TextIO

from edge.clock import SystemClock
from edge.config import Config
from posko.datadir import open_store
from sync.options import SyncOptions, broker_address
from sync.worker import SyncWorker

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `sync` subcommand; its handler is `sync_once`."""
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
    one.set_defaults(fail=one.error, handler=sync_once)


def sync_once(config: Config, args: argparse.Namespace) -> int:
    broker = args.broker or broker_address(config)
    if not broker:
        args.fail("give the district broker with --broker HOST:PORT (or set mqtt.broker)")
    if args.timeout is not None and args.timeout <= 0:
        args.fail("--timeout must be more than 0 seconds")
    config = config.replace(mqtt__broker=broker)
    options = SyncOptions.from_config(config)
    options.trust.require()  # exit 1 with one line: no district key to check acks with
    hint = "; a running station syncs by itself when mqtt.broker is set (`posko status`)"
    with open_store(config, "syncing by hand", hint) as store:
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
