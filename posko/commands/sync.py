"""`posko sync`: send what waits for the district now, by hand (a hotspot, a visit to town).

A running station syncs by itself (posko/runtime.py); this command needs the data directory
to itself. Exit status as everywhere: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from edge.clock import SystemClock
from edge.config import Config
from posko.commands.words import plural
from posko.datadir import open_store
from sync.options import SyncOptions, broker_address
from sync.worker import SyncWorker

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0
NO_ACK_HINT_S = 5.0  # online, batches sent, no ack for this long: the receiver may be down
# The worker's own lines about connecting: `posko sync` says each failure itself, once.
CONNECTION_LOGGERS = ("sync.worker", "sync.session")


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
        with (
            quiet_connection_logs(not getattr(args, "verbose", False)),
            SyncWorker(store, options, clock_state=SystemClock().state) as worker,
        ):
            return watch(worker, args.until_drained, args.timeout, sys.stderr)


class _NoConnectionChatter(logging.Filter):
    """Drops the worker's info and error lines (not warnings, not tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        chatter = record.levelno in (logging.INFO, logging.ERROR) and not record.exc_info
        return not chatter


@contextmanager
def quiet_connection_logs(quiet: bool) -> Iterator[None]:
    """While `posko sync` prints each connection failure as one line of its own."""
    loggers = [logging.getLogger(name) for name in CONNECTION_LOGGERS] if quiet else []
    chatter = _NoConnectionChatter()
    for logger in loggers:
        logger.addFilter(chatter)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(chatter)


def watch(
    worker: SyncWorker,
    until_drained: bool,
    timeout: float | None,
    out: TextIO,
    *,
    hint_after: float = NO_ACK_HINT_S,
) -> int:
    """Print progress until drained, a fatal error, the timeout or Ctrl-C; the exit status."""
    store = worker.store
    start, acked0 = time.monotonic(), store.acked

    def say(text: str) -> None:
        print(f"posko sync: {text}", file=out, flush=True)

    say(f"{plural(store.pending, 'event')} waiting for {worker.options.link.address}")
    news = News(worker, hint_after)
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
            for line in news.lines(start, acked0):
                say(line)
    except KeyboardInterrupt:
        pass
    say(progress(worker, start, acked0))
    messages = {
        "drained": f"every event is acknowledged (up to seq {store.acked})",
        "failed": f"stopped: {worker.fatal_error}",
        "timeout": f"timed out after {timeout:g} s with {plural(store.pending, 'event')} waiting"
        if timeout
        else "",
        "interrupted": f"interrupted with {plural(store.pending, 'event')} waiting",
    }
    say(messages[outcome])
    if outcome == "drained":
        return 0
    return 1 if until_drained or outcome == "failed" else 0


class News:
    """What is new since the last look: each failed connection once, progress when it
    changed, and once a hint when the broker takes batches but the district never answers."""

    def __init__(self, worker: SyncWorker, hint_after: float) -> None:
        self.worker = worker
        self.hint_after = hint_after
        self.failures = worker.failures
        self.shown: tuple[object, ...] = ()
        self.acked = worker.store.acked
        self.silent_since: float | None = None
        self.hinted = False

    def lines(self, start: float, acked0: int) -> list[str]:
        worker, lines = self.worker, []
        if worker.failures != self.failures:
            self.failures = worker.failures
            lines.append(f"{readable(worker.last_error)}; trying again")
        hint = self._hint()
        if hint:
            lines.append(hint)
        stats, store = worker.outbox.stats, worker.store
        figures = (stats.events, stats.resent, store.acked, store.last_seq, worker.state)
        if figures != self.shown and not hint:
            self.shown = figures
            lines.append(progress(worker, start, acked0))
        return lines

    def _hint(self) -> str | None:
        """Once: online, batches sent, and no ack for `hint_after` seconds."""
        worker, now = self.worker, time.monotonic()
        if worker.store.acked != self.acked or worker.state != "online":
            self.acked, self.silent_since = worker.store.acked, None
            return None
        if not worker.outbox.stats.batches or self.hinted:
            return None
        if self.silent_since is None:
            self.silent_since = now
        if now - self.silent_since < self.hint_after:
            return None
        self.hinted = True
        return (
            "the district is not acknowledging — is the receiver running? (the broker at "
            f"{worker.options.link.address} took {plural(worker.outbox.stats.batches, 'batch')}; "
            f"nothing acknowledged for {now - self.silent_since:.0f} s)"
        )


def readable(error: str | None) -> str:
    """An error for one line: "[Errno 111] Connection refused" reads as "connection refused"."""
    return re.sub(r"\[Errno -?\d+\] (\w)", lambda m: m[1].lower(), error or "connection failed")


def progress(worker: SyncWorker, start: float, acked0: int) -> str:
    store, stats = worker.store, worker.outbox.stats
    elapsed = max(time.monotonic() - start, 1e-6)
    rate = (store.acked - acked0) / elapsed
    return (
        f"sent {plural(stats.events, 'event')} in {plural(stats.batches, 'batch')} "
        f"({stats.resent} resent, {stats.payload_bytes} bytes), acknowledged up to "
        f"{store.acked} of {store.last_seq} ({store.pending} waiting), {rate:.0f} events/s, "
        f"{worker.state}"
    )
