"""`posko run`: the station, the guard's page, sync and retention in one process.

Everything is opened in order and closed in reverse on SIGTERM or Ctrl-C; while it runs,
systemd's watchdog is fed only as long as the press path, the store and the page are healthy.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from typing import Any

from edge.config import Config
from edge.post import Post
from sensors.errors import PoskoError, UsageError

log = logging.getLogger("posko")

PRODUCTION_DATA = "/var/lib/posko"


def refuse_production(config: Config, what: str) -> None:
    """Simulations make up events: never into the real post's data directory."""
    if os.path.abspath(config["data.dir"]) == PRODUCTION_DATA:
        raise UsageError(
            f"{what} makes up events: give it a scratch directory with --data DIR "
            f"(it will not write into the post's real {PRODUCTION_DATA})"
        )


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from edge.simulate import run_demo

    if args.demo:
        refuse_production(config, "--demo")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Post(config, mock=args.mock or args.demo) as post, ExitStack() as services:
        page = _start_web(post, config, services)
        _start_sync(post, config, services)
        _start_privacy(post, services)
        print(
            f"posko: post {config['post.id']} is running; data in {post.data_dir}; "
            "stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        if page:
            print(f"posko: the guard's page is at {page}", file=sys.stderr, flush=True)
        if args.demo:
            threading.Thread(target=run_demo, args=(post, stop), name="demo", daemon=True).start()
        _supervise(post, stop)
        log.info("stopping: finishing the current write, then releasing pins and camera")
    return 0


def _supervise(post: Any, stop: threading.Event) -> None:
    """Tell systemd the station is alive while it is healthy, until asked to stop."""
    from edge.watchdog import Watchdog

    watchdog = Watchdog()
    watchdog.ready(f"post {post.config['post.id']} running")
    while not stop.wait(watchdog.interval or 5.0):
        problems = station_problems(post)
        if not problems:
            watchdog.ping()
        else:  # no ping: systemd restarts a station that stays unhealthy
            log.error("station unhealthy: %s", "; ".join(problems))
    watchdog.stopping()


def station_problems(post: Any) -> list[str]:
    """Why the press path, the store or the page is not healthy; empty when all are."""
    problems = []
    if not post.station.alive:
        problems.append("the station thread has stopped")
    store = post.store.health()
    if not store["ok"]:
        problems.append(f"store unavailable: {store['last_error']}")
    server = getattr(post, "web_server", None)
    if server is not None and not server.alive:
        problems.append("the guard's page is not being served")
    return problems


def _start_privacy(post: Any, services: ExitStack) -> None:
    """Start the retention thread that purges what UU PDP says must not be kept."""
    from posko.commands.privacy import start_privacy

    start_privacy(post, services)


def _start_web(post: Any, config: Config, services: ExitStack) -> str | None:
    """Serve the guard's page for this post with waitress; returns its address."""
    from web.app import create_app
    from web.pin import pin_path
    from web.server import WebServer

    # The page's saved settings are already in `config` (posko.cli applies them at start-up).
    if not pin_path(post.data_dir).exists():
        log.warning(
            "no admin PIN yet: the page's settings stay locked until `posko set-pin` is run"
        )
    server = WebServer(create_app(post.config, post), post.config)
    try:
        server.start()
    except OSError as e:
        server.close()
        raise PoskoError(
            f"cannot serve the guard's page on {config['web.listen']}: {e.strerror or e}"
        ) from e
    services.callback(server.close)
    post.web_server = server  # for the watchdog
    return server.url


def _start_sync(post: Any, config: Config, services: ExitStack) -> None:
    """Start the sync worker thread for this post when mqtt.broker is set."""
    from posko.commands.sync import start_worker

    worker = start_worker(post, services)
    if worker is not None:  # the guard's screen shows whether the district is reachable
        post.sync_state = lambda: {
            "connected": worker.state == "online",
            "state": worker.state,
            "error": worker.last_error,
        }
