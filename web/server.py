"""Serve the page with waitress (never Flask's development server) in a thread.

The page binds to loopback unless the admin allowed LAN access (`web.lan_access`); when
that setting changes on the page, the server moves to the new address by itself. Slow and
many clients are kept in bounds by `web.connections`; `answers()` asks the page over HTTP
whether it still serves (for the watchdog, which a live thread alone does not convince).
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import threading
from typing import Any

from flask import Flask
from waitress import wasyncore

from edge.config import Config
from web.connections import page_server
from web.options import PageOptions
from web.services import PoskoWeb

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
EXTRA_THREADS = 4  # request threads besides those held by live streams


def bind_address(config: Config) -> tuple[str, int]:
    """(host, port) to listen on: loopback unless LAN access is on."""
    options = PageOptions.from_config(config)
    host, port = options.listen.rsplit(":", 1)
    host = host.strip("[]")
    if not options.lan_access:
        if not _is_loopback(host):
            log.warning(
                "web.listen %s is not loopback but web.lan_access is off: serving on %s only",
                host,
                LOOPBACK,
            )
        return LOOPBACK, int(port)
    if _is_loopback(host):
        return "0.0.0.0", int(port)  # LAN access with the default address: every interface
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """A waitress server for the app in a daemon thread; `close()` stops it (idempotent)."""

    def __init__(self, app: Flask, config: Config) -> None:
        self.app = app
        self.services: PoskoWeb = app.extensions["posko"]
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address = bind_address(config)
        self.moved = threading.Event()  # set each time the server moved to a new address
        self.services.on_reconfigure.append(self._follow)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = "localhost" if host in (LOOPBACK, "0.0.0.0") else host
        return f"http://{shown}:{port}/"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def answers(self, timeout: float) -> bool:
        """Whether the page answers an HTTP request within `timeout` seconds (any status:
        `/healthz` says 503 when the store is down, and that is an answer)."""
        host, port = self.address
        host = LOOPBACK if host == "0.0.0.0" else host
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/healthz", headers={"Connection": "close"})
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException) as e:
            log.warning("the guard's page did not answer on %s:%s: %s", host, port, e)
            return False
        finally:
            conn.close()

    def start(self) -> WebServer:
        with self._lock:
            self._start()
        return self

    def _start(self) -> None:
        host, port = self.address
        threads = self.services.page_options.sse_max_streams + EXTRA_THREADS
        self._server = page_server(self.app, host, port, threads)
        self.address = (host, int(self._server.effective_port))
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        log.info("guard's page serving on %s:%s", *self.address)

    def _stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        # Streams first, then the request threads, then the socket loop: a finishing
        # request still pokes the loop's trigger, which must be open until then.
        self.services.hub.end_all()
        server.task_dispatcher.shutdown(timeout=timeout)
        # pull_trigger queues its thunk before it writes, and the loop may run the thunk
        # first (woken by an earlier pull): so the thunk only empties the map, which ends
        # the loop, and the sockets are closed here once the loop thread is gone.
        sockets: dict[int, Any] = {}

        def detach() -> None:
            server.accepting = False  # no new connection in the loop's last round
            sockets.update(server._map)
            server._map.clear()

        server.trigger.pull_trigger(detach)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the page's server loop did not stop within %s s", timeout)
                return
        sockets.update(server._map)  # the loop may have ended before it ran the thunk
        for dispatcher in sockets.values():
            if dispatcher is server:
                wasyncore.dispatcher.close(server)  # server.close() would shut the trigger
            elif dispatcher is not server.trigger:
                dispatcher.close()
        stray = len(server.task_dispatcher.threads)
        if stray:  # a request that outlived the timeout still pulls the trigger when done
            log.warning("%d request thread(s) still running; their trigger stays open", stray)
        else:
            server.trigger.close()

    def _follow(self, config: Config) -> None:
        """Move to the new address when LAN access changed (after this response is sent)."""
        host, _ = bind_address(config)
        if host != self.address[0]:
            threading.Timer(0.5, self._rebind, args=(config,)).start()

    def _rebind(self, config: Config) -> None:
        with self._lock:
            if self._server is None:
                return
            self._stop()
            self.address = (bind_address(config)[0], self.address[1])
            try:
                self._start()
            except OSError:
                log.exception("cannot serve on %s:%s; back to loopback", *self.address)
                self.address = (LOOPBACK, self.address[1])
                self._start()
            self.moved.set()

    def close(self) -> None:
        self.services.hub.close()
        with self._lock:
            self._stop()
        self.services.close()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
