"""`posko run`: the station, the guard's page, sync and retention in one process.

The runtime opens everything in order and closes it in reverse on SIGTERM or Ctrl-C; while
it runs, systemd's watchdog is fed only as long as its health check passes.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from edge.config import Config
from edge.simulate import run_demo
from edge.watchdog import Watchdog
from posko.stopping import StopSignal
from sensors.errors import UsageError

if TYPE_CHECKING:
    from posko.runtime import Runtime

log = logging.getLogger(__name__)

PRODUCTION_DATA = "/var/lib/posko"


def register(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run the station (buttons, thermometer, lights, store)",
        description="Run the station until stopped (Ctrl-C or SIGTERM). On a laptop, or "
        "with --mock, the GPIO pins are simulated; --demo then presses them "
        "by itself every few seconds.",
    )
    run.add_argument("--mock", action="store_true", help="use mock GPIO pins even on a Pi")
    run.add_argument(
        "--demo", action="store_true", help="press the mock buttons automatically (implies --mock)"
    )
    run.add_argument("--web", metavar="HOST:PORT", help="address of the guard's page")
    run.add_argument("--broker", metavar="HOST:PORT", help="district MQTT broker")
    run.set_defaults(handler=cmd_run, overrides={"web": "web.listen", "broker": "mqtt.broker"})


def refuse_production(config: Config, what: str) -> None:
    """Simulations make up events: never into the real post's data directory."""
    if os.path.abspath(config.post.data_dir) == PRODUCTION_DATA:
        raise UsageError(
            f"{what} makes up events: give it a scratch directory with --data DIR "
            f"(it will not write into the post's real {PRODUCTION_DATA})"
        )


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from posko.runtime import Runtime  # here: the whole station would slow other commands

    if args.demo:
        refuse_production(config, "--demo")
    with StopSignal() as stop, Runtime(config) as runtime:
        runtime.start(mock=args.mock or args.demo)
        post = runtime.running_post
        print(
            f"posko: post {config.post.id} is running; data in {post.data_dir}; stop with Ctrl-C",
            file=sys.stderr,
            flush=True,
        )
        if runtime.page is not None:
            print(f"posko: the guard's page is at {runtime.page.url}", file=sys.stderr, flush=True)
        if args.demo:
            demo = threading.Thread(target=run_demo, args=(post, stop.event), name="demo")
            demo.daemon = True
            demo.start()
        supervise(runtime, stop)
        log.info("stopping: finishing the current write, then releasing pins and camera")
    return 0


def supervise(runtime: Runtime, stop: StopSignal, watchdog: Watchdog | None = None) -> None:
    """Tell systemd the station is alive while it is healthy, until asked to stop."""
    watchdog = watchdog or Watchdog()
    watchdog.ready(f"post {runtime.config.post.id} running")
    while not stop.wait(watchdog.interval or 5.0):
        health = runtime.health(probe_page=True)
        if health.ok:
            watchdog.ping()
        else:  # no ping: systemd restarts a station that stays unhealthy
            log.error("station unhealthy: %s", "; ".join(health.reasons))
    watchdog.stopping()
