"""How the page's server keeps answering when clients are slow or many: waitress, with a
deadline for each request to arrive, room made by closing the connection that has waited
longest for nothing, and a cap on connections from one LAN address.

Waitress alone stops accepting at its connection limit, so 100 sockets that never finish a
request leave the guard's screen without an answer until each times out.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

log = logging.getLogger(__name__)

CONNECTION_LIMIT = 100  # open connections in all (waitress's default, said here)
REQUEST_DEADLINE_S = 10  # a request must arrive whole this soon after its first byte
IDLE_S = 30  # a kept-alive connection with nothing to do is closed after this
PER_ADDRESS = 16  # connections from one LAN address (a browser opens about 6)
MAINTENANCE_S = 1  # how often connections past those limits are looked for


class PageChannel(HTTPChannel):
    """A connection that knows since when its current request has been arriving."""

    started: float | None = None

    def received(self, data: bytes) -> bool:
        done: bool = super().received(data)
        if self.request is None:
            self.started = None
        elif self.started is None:
            self.started = time.time()
        return done

    def waiting_since(self) -> float | None:
        """Since when it has held its place without a request to run (None: one runs)."""
        if self.requests:
            return None
        return self.started if self.started is not None else self.last_activity


class PageSocketServer(TcpWSGIServer):
    """Waitress's TCP server that makes room instead of refusing to accept."""

    channel_class = PageChannel
    next_cleanup = 0.0
    refusals = 0  # connections closed at once: a LAN address over its share, or no room
    _next_warning = 0.0

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle past channel_timeout
        for channel in list(self.active_channels.values()):
            started = getattr(channel, "started", None)
            if started is not None and not channel.requests and now - started > REQUEST_DEADLINE_S:
                channel.will_close = True  # closed by the loop, as waitress closes idle ones

    def readable(self) -> bool:
        # Like waitress, with maintenance; but it keeps accepting at the limit:
        # handle_accept makes room, or refuses the newcomer.
        now = time.time()
        if now >= self.next_cleanup:
            self.next_cleanup = now + self.adj.cleanup_interval
            self.maintenance(now)
        return bool(self.accepting)

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)
        except OSError:  # the client left before it was accepted (as waitress does)
            return
        addr = self.fix_addr(addr)
        channels = [c for c in self.active_channels.values() if isinstance(c, PageChannel)]
        host = addr[0] if isinstance(addr, tuple) else ""
        if not _is_loopback(host) and Counter(c.addr[0] for c in channels)[host] >= PER_ADDRESS:
            self._refused(f"{host} holds {PER_ADDRESS} connections already")
            conn.close()
            return
        if len(channels) >= self.adj.connection_limit and not _make_room(channels):
            self._refused("every connection runs a request")
            conn.close()
            return
        self.channel_class(self, conn, addr, self.adj, map=self._map)

    def _refused(self, why: str) -> None:
        """Say so at most once a minute: a flood must not fill the journal."""
        self.refusals += 1
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + 60
            log.warning("refused a connection (%s); %d refused so far", why, self.refusals)


def _make_room(channels: list[PageChannel]) -> bool:
    """Close the connection that has waited longest without a request to run."""
    waiting = [(since, c) for c in channels if (since := c.waiting_since()) is not None]
    if not waiting:
        return False
    _, oldest = min(waiting, key=lambda pair: pair[0])
    oldest.handle_close()  # in the loop's thread, between its select and its next round
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_server(app: Any, host: str, port: int, threads: int) -> PageSocketServer:
    """The page's waitress server, listening on (host, port); run() serves."""
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="posko",
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=IDLE_S,
        cleanup_interval=MAINTENANCE_S,
        # Keep reading while a request runs, so that a stream whose page went away ends
        # at once (waitress then reports the client as disconnected).
        channel_request_lookahead=1,
    )
    return PageSocketServer(app, map={}, adj=adj)
