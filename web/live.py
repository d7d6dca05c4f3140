"""Server-sent events for the live view: a tick per durable event, with a bound on streams.

Each open page holds one stream (one server thread), so the number of streams is bounded
(`web.sse_max_streams`); a page refused a stream polls instead. A stream sends a comment
as keep-alive, ends after `lifetime_s` (the browser reconnects), when the hub closes, and
within a second of its page going away (the server says so through `gone`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator

from edge.events import Event

log = logging.getLogger(__name__)

QUEUE_MAX = 64  # ticks a slow stream may fall behind; it only needs the newest
GONE_CHECK_S = 1.0  # how often a quiet stream asks whether its page is still there
RETRY_MS = 2000  # how long a browser waits before reconnecting a closed stream


class Hub:
    """Fans the station's events out to the open streams."""

    def __init__(
        self, limit: Callable[[], int], *, keepalive_s: float = 15.0, lifetime_s: float = 600.0
    ) -> None:
        self._limit = limit
        self.keepalive_s = keepalive_s
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._queues: set[queue.Queue[int | None]] = set()
        self._closed = False
        self.last_seq = 0

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._queues)

    def publish(self, event: Event) -> None:
        """A station listener: never blocks the station thread."""
        with self._lock:
            self.last_seq = max(self.last_seq, event["seq"])
            targets = list(self._queues)
        for q in targets:
            # A stream that is behind loses ticks: the page fetches the whole panel anyway.
            with contextlib.suppress(queue.Full):
                q.put_nowait(event["seq"])

    def nudge(self) -> None:
        """Tell the pages to look again although nothing was stored (a press was lost)."""
        with self._lock:
            targets, seq = list(self._queues), self.last_seq
        for q in targets:
            with contextlib.suppress(queue.Full):
                q.put_nowait(seq)

    def open(self, gone: Callable[[], bool] | None = None) -> Stream | None:
        """A new stream, or None when the bound is reached or the hub is closed. `gone`
        says whether the page went away (waitress's `waitress.client_disconnected`)."""
        with self._lock:
            if self._closed or len(self._queues) >= self._limit():
                return None
            q: queue.Queue[int | None] = queue.Queue(QUEUE_MAX)
            self._queues.add(q)
        return Stream(self, q, gone)

    def release(self, q: queue.Queue[int | None]) -> None:
        with self._lock:
            self._queues.discard(q)

    def close(self) -> None:
        """End every stream and open no more (at shutdown)."""
        with self._lock:
            self._closed = True
        self.end_all()

    def end_all(self) -> None:
        """End the open streams (their pages reconnect), so that server threads are free."""
        with self._lock:
            targets = list(self._queues)
        for q in targets:
            try:
                q.put_nowait(None)
            except queue.Full:
                _clear_then_end(q)


class Stream:
    """One page's stream: an iterator of SSE text whose `close()` (called by the WSGI
    server when the page goes away, even before the first line) frees its place."""

    def __init__(
        self, hub: Hub, q: queue.Queue[int | None], gone: Callable[[], bool] | None = None
    ) -> None:
        self._hub = hub
        self._q = q
        self._gone = gone or _present
        self._lines = self._run()

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        return next(self._lines)

    def _run(self) -> Generator[str, None, None]:
        hub, q = self._hub, self._q
        try:
            yield f"retry: {RETRY_MS}\nevent: hello\ndata: {hub.last_seq}\n\n"
            deadline = time.monotonic() + hub.lifetime_s
            spoke = time.monotonic()
            while time.monotonic() < deadline and not self._gone():
                try:
                    seq = q.get(timeout=min(GONE_CHECK_S, hub.keepalive_s))
                except queue.Empty:
                    if time.monotonic() - spoke >= hub.keepalive_s:
                        spoke = time.monotonic()
                        yield ": keep-alive\n\n"
                    continue
                seq, ended = _drain(q, seq)
                if seq is not None:
                    spoke = time.monotonic()
                    yield f"event: update\ndata: {seq}\n\n"
                if ended:
                    return
        finally:
            hub.release(q)

    def close(self) -> None:
        self._lines.close()
        self._hub.release(self._q)


def _present() -> bool:
    return False


def _drain(q: queue.Queue[int | None], first: int | None) -> tuple[int | None, bool]:
    """The newest seq waiting (ticks coalesce) and whether the stream must end."""
    newest, ended = first, first is None
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return newest, ended
        if item is None:
            ended = True
        else:
            newest = item if newest is None else max(newest, item)


def _clear_then_end(q: queue.Queue[int | None]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
    q.put_nowait(None)
