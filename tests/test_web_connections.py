"""The real page server under slow and vanishing clients, on real sockets and a free port:
slow sockets cannot starve the page, a stream whose page went away frees its place at
once, and the watchdog notices a page that is alive but answers nobody."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import posko.runtime
from bench.ports import free_port
from edge.config import Config
from edge.post import Post
from edge.watchdog import Watchdog
from posko.commands.run import supervise
from posko.runtime import Runtime
from posko.stopping import StopSignal
from tests.support.web_support import serve
from web import connections
from web.server import WebServer

WAIT_S = 5.0
PROBE_S = 0.5  # the watchdog's HTTP probe timeout, shortened for the tests


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def served(open_post: Callable[..., Post], config: Config) -> Iterator[WebServer]:
    server = serve(open_post([36.6]), config)
    yield server
    server.close()


def slow_socket(address: tuple[str, int], source: str | None = None) -> socket.socket:
    """A client that starts a request and never finishes it."""
    s = socket.create_connection(
        address, timeout=WAIT_S, source_address=(source, 0) if source else None
    )
    s.sendall(b"GET / HTTP/1.1\r\nHost: posko\r\n")
    return s


def closed_by_server(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_110_slow_sockets_do_not_stop_the_page(
    served: WebServer, stack: ExitStack
) -> None:
    for _ in range(110):
        stack.enter_context(slow_socket(served.address))
    started = time.monotonic()
    with urllib.request.urlopen(served.url + "healthz", timeout=WAIT_S) as answer:
        assert answer.status == 200
    assert time.monotonic() - started < 2.0
    assert served.answers(timeout=2.0)


@pytest.mark.slow
def test_connections_a_request_that_never_ends_is_closed_at_the_deadline(
    served: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "REQUEST_DEADLINE_S", 0.5)
    with slow_socket(served.address) as s:
        s.sendall(b"X-Drip: 1\r\n")  # bytes keep coming, the request never completes
        assert closed_by_server(s, timeout=WAIT_S)


def lan_address() -> str | None:
    """This machine's address on a LAN, if it has one (the route, no packet sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            return None
        found = probe.getsockname()[0]
    return None if found.startswith("127.") else found


def test_connections_one_lan_address_holds_a_bounded_share(
    open_post: Callable[..., Post], config: Config, stack: ExitStack
) -> None:
    lan = lan_address()
    if lan is None:
        pytest.skip("this machine has no LAN address to connect from")
    server = serve(open_post([36.6]), config.replace(web__lan_access=True))
    stack.callback(server.close)
    port = server.address[1]
    held = [
        stack.enter_context(slow_socket((lan, port), lan)) for _ in range(connections.PER_ADDRESS)
    ]
    one_more = stack.enter_context(slow_socket((lan, port), lan))
    assert closed_by_server(one_more, timeout=WAIT_S)
    assert not closed_by_server(held[0], timeout=0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=WAIT_S) as answer:
        assert answer.status == 200  # the kiosk on loopback is not the LAN client's share


def open_stream(address: tuple[str, int]) -> socket.socket:
    s = socket.create_connection(address, timeout=WAIT_S)
    s.sendall(b"GET /live/stream HTTP/1.1\r\nHost: posko\r\n\r\n")
    got = b""
    while b"event: hello" not in got:
        chunk = s.recv(4096)
        assert chunk, "the stream ended before its hello"
        got += chunk
    return s


@pytest.mark.slow
def test_connections_a_vanished_stream_frees_its_place_at_once(served: WebServer) -> None:
    hub = served.services.hub
    limit = served.services.page_options.sse_max_streams
    streams = [open_stream(served.address) for _ in range(limit)]
    assert hub.open_streams == limit
    for s in streams:
        s.close()  # the tablet's browser went away without a word
    assert wait_until(lambda: hub.open_streams == 0, timeout=3.0), hub.open_streams
    open_stream(served.address).close()  # a new screen gets a stream again


@pytest.fixture
def runtime(
    open_post: Callable[..., Post], config: Config, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    monkeypatch.setattr(posko.runtime, "PAGE_PROBE_S", PROBE_S)
    cfg = config.replace(web__listen=f"127.0.0.1:{free_port()}")
    with Runtime(cfg, post=open_post([36.6], cfg=cfg)) as running:
        yield running.start(mock=True)


def wedge(server: WebServer, stack: ExitStack) -> None:
    """Block the page's socket loop: its thread lives on, and nobody gets an answer."""
    release = threading.Event()
    server._server.trigger.pull_trigger(lambda: release.wait(30))
    stack.callback(release.set)


def test_connections_the_watchdog_probe_notices_a_page_that_answers_nobody(
    runtime: Runtime, stack: ExitStack
) -> None:
    page = runtime.page
    assert page is not None and runtime.health(probe_page=True).ok
    wedge(page, stack)
    probed = runtime.health(probe_page=True)
    assert page.alive and not probed.ok
    assert "the guard's page does not answer" in probed.reasons
    assert runtime.health().ok  # what /healthz asks: no probe of itself


@pytest.mark.slow
def test_connections_the_watchdog_stops_pinging_while_the_page_answers_nobody(
    runtime: Runtime, stack: ExitStack, tmp_path: Path
) -> None:
    systemd = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(WAIT_S)
    watchdog = Watchdog({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"})
    stop = stack.enter_context(StopSignal())
    thread = threading.Thread(target=supervise, args=(runtime, stop, watchdog))
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(stop.request)
    assert systemd.recv(64).startswith(b"READY=1")
    assert systemd.recv(64) == b"WATCHDOG=1"
    assert runtime.page is not None
    wedge(runtime.page, stack)
    systemd.settimeout(4 * PROBE_S)  # many intervals (0.1 s), each probe timing out
    pings = []
    with pytest.raises(TimeoutError):
        for _ in range(5):
            pings.append(systemd.recv(64))
    assert len(pings) <= 1  # at most the one whose probe was answered before the wedge
