"""Opening the post's data directory from a command: as its writer, or refused while the
station runs, with one message naming the station's pid and what to do about it.

Commands that only read (`status`, `export`, `privacy find`) open a read-only view beside a
running station instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.config import Config
from edge.ownership import DataDirLock
from edge.store import EventStore
from sensors.errors import DataDirBusy, PoskoError


class StationRunning(PoskoError):
    """The station owns the data directory (and the pins and the thermometer)."""


def refusal(error: DataDirBusy, what: str, hint: str = "") -> StationRunning:
    """What a technician reads when the station holds the data directory `what` needs."""
    who = f"posko process {error.pid}" if error.pid else "another posko process"
    return StationRunning(
        f"the station ({who}) is running on {error.path} and owns it; {what} needs it: "
        f"stop it first (`sudo systemctl stop posko`, or Ctrl-C){hint}"
    )


def open_store(config: Config, what: str, hint: str = "", *, create: bool = False) -> EventStore:
    """The post's store as its only writer, or `StationRunning` while the station runs.

    With `create`, a missing data directory is made (owned like its nearest parent)."""
    data_dir = config.post.data_dir
    if not data_dir.is_dir() and not create:
        raise PoskoError(f"no data directory at {data_dir}")
    try:
        with as_data_owner(nearest(data_dir)):
            return EventStore(data_dir, config.post.id, config.post.zone)
    except DataDirBusy as e:
        raise refusal(e, what, hint) from None


def open_for_reading(config: Config) -> EventStore:
    """The store, read-write when no station runs (so damage is repaired), else read-only."""
    post = config.post
    data_dir = post.data_dir
    if not data_dir.is_dir():
        raise PoskoError(f"no data directory at {data_dir}")
    try:
        with as_data_owner(data_dir):
            return EventStore(data_dir, post.id, post.zone)
    except DataDirBusy:
        return EventStore(data_dir, post.id, post.zone, read_only=True)


@contextmanager
def hold_data_dir(data_dir: Path, what: str) -> Iterator[None]:
    """Keep the station from starting (or refuse while it runs) for the duration."""
    if not data_dir.is_dir():  # no station has ever run here
        yield
        return
    try:
        with as_data_owner(data_dir):
            lock = DataDirLock(data_dir).acquire()
    except DataDirBusy as e:
        raise refusal(e, what) from None
    try:
        yield
    finally:
        lock.close()


def nearest(path: Path) -> Path:
    """`path`, or its nearest parent that exists (whose owner a new data directory gets)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@contextmanager
def as_data_owner(path: Path) -> Iterator[None]:
    """Run as the owner of `path` when root, so files made there stay the station's."""
    st = path.stat()
    if os.geteuid() != 0 or st.st_uid == 0:
        yield
        return
    os.setegid(st.st_gid)
    os.seteuid(st.st_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
