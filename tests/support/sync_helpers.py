"""Shared pieces of the sync tests: backlogs of realistic events, worker options, and the
district receiver as a real `posko district run` process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import bench.store
from bench.store import day_events, generate
from district.sqlite import SQLiteStorage
from edge.config import defaults
from edge.store import EventStore
from sync.options import SyncOptions
from tests.support.keys import TRUST, write_keys
from tests.support.sync_broker import wait_for

POST = "bench"  # the post id of bench.store's generator
FAST_BACKOFF = (0.05, 0.5)


def backlog(data_dir: Path, events: int, seed: int = 1, post: str = POST) -> int:
    """A post's data directory holding `events` varied events over a few days, unsynced."""
    # The generator writes its own post id: lend it another one for a district of posts.
    with mock.patch.object(bench.store, "POST", post):
        generate(data_dir, events, max(1, min(events // 500, 30)), seed)
    return events


def realistic(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """n events of the bench mix (entries, exits, re-checks, voids, visitors, faults)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    day = date(2026, 9, 1)
    while len(events) < n:
        count = min(1400, n - len(events))
        events += day_events(rng, day, ZoneInfo("Asia/Jakarta"), len(events) + 1, count, None)
        day += timedelta(days=1)
    return [json.loads(json.dumps(e)) for e in events]  # as read back from the journal


def options(address: str, post: str = POST, **changes: Any) -> SyncOptions:
    """Sync options of the bench post (or `post`) against `address`, pinning the tests'
    district key; short timeouts for tests."""
    config = defaults().replace(post__id=post, mqtt__broker=address, data__dir="/nonexistent")
    return SyncOptions.from_config(config, **{"ack_timeout": 3.0, "trust": TRUST, **changes})


def district_count(path: Path) -> int:
    if not path.exists():
        return 0
    with SQLiteStorage(path, read_only=True) as db:
        try:
            return db.count()
        except Exception:  # the receiver may not have made its tables yet
            return 0


def assert_exactly_once(db_path: Path, store: EventStore) -> None:
    """The district holds every event of the store once, with no gap left."""
    with SQLiteStorage(db_path, read_only=True) as db:
        seqs = db.seqs(POST)
        expected = [e["seq"] for e in store.since(0)]
        assert seqs == expected
        assert db.count() == len(expected)
        assert db.gaps(POST) == []
        assert db.contiguous(POST) == store.last_seq


class ReceiverProcess:
    """`posko district run` as a child process, signing with the tests' district key;
    `subscribed` waits for its log line."""

    def __init__(self, db: Path | str, broker: str, *extra: str, keys: Path | None = None) -> None:
        # A PostgreSQL address has no directory of its own: `keys` says where the keys go.
        key, _ = write_keys((keys or Path(db).parent) / "district-keys")
        self.args = [
            sys.executable,
            "-m",
            "posko.cli",
            "district",
            "run",
            "--db",
            str(db),
            "--broker",
            broker,
            "--signing-key",
            str(key),
            *extra,
        ]
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> ReceiverProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
        self.lines = []
        self.process = subprocess.Popen(self.args, stderr=subprocess.PIPE, text=True, env=env)
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self._reader.start()
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.lines.append(line)

    def wait_subscribed(self, timeout: float = 20.0) -> None:
        try:
            wait_for(
                lambda: any("subscribed" in line for line in self.lines),
                timeout,
                "the receiver to subscribe",
            )
        except AssertionError as e:
            raise AssertionError(f"{e}; it said: {''.join(self.lines)[-3000:]}") from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> str:
        """SIGTERM, wait, and return everything it logged."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        return "".join(self.lines)
