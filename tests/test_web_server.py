"""The real server: waitress on loopback, server-sent events within a second, clean stop,
and `posko run` serving the page from the same process as the station."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.ports import free_port
from edge.config import Config
from edge.post import Post
from tests.support.guard import Guard
from tests.support.web_support import serve
from web.server import WebServer, bind_address

TIMEOUT = 60


@pytest.fixture
def served(open_post: Callable[..., Post], config: Config) -> tuple[Post, WebServer]:
    post = open_post([36.6])
    server = serve(post, config)
    yield post, server  # type: ignore[misc]
    server.close()


def test_web_binds_loopback_unless_lan_access(config: Config) -> None:
    assert bind_address(config.replace(web__listen="0.0.0.0:8080")) == ("127.0.0.1", 8080)
    lan = config.replace(web__lan_access=True)
    assert bind_address(lan) == ("0.0.0.0", 8080)
    assert bind_address(lan.replace(web__listen="10.0.0.5:81")) == ("10.0.0.5", 81)


def test_web_server_streams_an_event_within_a_second(
    served: tuple[Post, WebServer], clock: object
) -> None:
    post, server = served
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/live/stream")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert b"event: hello" in response.readline() + response.readline() + response.readline()
    post.station.press("keluar_warga")  # returns once the event is durable
    started = time.monotonic()
    lines = b""
    while b"event: update" not in lines:
        lines += response.readline()
    assert time.monotonic() - started < 1.0
    assert b"data: 1" in lines + response.readline()
    conn.close()


def test_web_server_serves_pages_and_health(served: tuple[Post, WebServer]) -> None:
    _, server = served
    with urllib.request.urlopen(server.url + "healthz", timeout=5) as answer:
        assert json.loads(answer.read())["ok"] is True
        assert answer.headers["Server"] == "posko"
    with urllib.request.urlopen(server.url, timeout=5) as answer:
        assert "Masuk Warga" in answer.read().decode()


@pytest.mark.slow
def test_web_lan_access_moves_the_server_without_a_restart(served: tuple[Post, WebServer]) -> None:
    post, server = served
    port = server.address[1]
    server.services.reconfigure(post.config.replace(web__lan_access=True))
    assert server.moved.wait(10)
    assert server.address == ("0.0.0.0", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert json.loads(answer.read())["web"] is True
    server.moved.clear()
    server.services.reconfigure(post.config.replace(web__lan_access=False))
    assert server.moved.wait(10)
    assert server.address == ("127.0.0.1", port)


def test_web_server_close_ends_open_streams(open_post: Callable[..., Post], config: Config) -> None:
    post = open_post()
    guard = Guard(post, post.clock)  # type: ignore[arg-type]
    server = serve(post, config)
    conn = http.client.HTTPConnection(*server.address, timeout=10)
    conn.request("GET", "/live/stream")
    conn.getresponse().readline()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 3
    assert not server.alive
    guard.press("keluar_warga")  # the station goes on without the page
    conn.close()


def test_web_server_close_survives_the_loop_running_its_thunk_first(
    open_post: Callable[..., Post], config: Config
) -> None:
    """waitress's pull_trigger queues the stop's thunk before it writes the wake-up byte;
    a request's earlier pull can make the loop run the thunk in between (seen as EBADF)."""
    server = serve(open_post(), config)
    trigger = server._server.trigger
    pull = trigger._physical_pull

    def late_pull() -> None:
        pull()  # a request thread's pull wakes the loop, which runs the queued thunk...
        deadline = time.monotonic() + 5
        while trigger.thunks and time.monotonic() < deadline:
            time.sleep(0.001)
        assert not trigger.thunks, "the loop did not run the stop's thunk"
        pull()  # ...and only then does the stop's own write happen

    trigger._physical_pull = late_pull
    server.close()
    assert not server.alive
    assert trigger._closed  # and nothing is left open


@pytest.mark.slow
def test_web_posko_run_serves_the_page(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    station = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posko.cli",
            "--data",
            str(tmp_path / "d"),
            "run",
            "--mock",
            "--web",
            f"127.0.0.1:{port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert station.stderr is not None
        for line in station.stderr:
            if "guard's page is at" in line:
                assert f":{port}/" in line
                break
        else:
            pytest.fail("the page was not started")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert json.loads(answer.read())["station"] is True
    finally:
        station.send_signal(signal.SIGTERM)
        assert station.wait(TIMEOUT) == 0
        if station.stderr is not None:
            station.stderr.close()
