"""The `posko` command: run the station, simulate presses, show status, export events.

Exit status: 0 success, 1 runtime failure (one line on stderr), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from edge import __version__
from edge.config import Config, describe, example_toml, load
from edge.export import write_csv, write_jsonl
from edge.store import EventStore
from posko.commands.run import cmd_run, refuse_production
from sensors.errors import ConfigError, DataDirBusy, PoskoError, UsageError

log = logging.getLogger("posko")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posko",
        description="Posko: the entry-post station of a Kampung Tangguh village. Guards "
        "press buttons for people entering and leaving; entries are screened "
        "for fever; every press becomes a durable event in the data directory.",
        epilog="Run `posko COMMAND --help` for the options of one command, and "
        "`posko settings` for every setting of the configuration file.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (default /etc/posko/config.toml if present)",
    )
    parser.add_argument(
        "--data", metavar="DIR", help="data directory holding the events (overrides data.dir)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--version", action="version", version=f"posko {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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

    sim = commands.add_parser(
        "simulate",
        help="drive N realistic presses through the real code and exit",
        description="Press the mock buttons N times (residents, visitors, exits, fevers, "
        "re-checks, sensor faults, Batal, Darurat) on a virtual clock, through "
        "the same code as the real buttons, then exit.",
    )
    sim.add_argument("--presses", type=int, required=True, metavar="N", help="how many presses")
    sim.add_argument(
        "--jsonl", action="store_true", help="print each event as one JSON line once it is durable"
    )
    sim.add_argument("--seed", type=int, help="repeat the same run")

    status = commands.add_parser(
        "status",
        help="show the post, event counts, sync backlog and store health",
        description="Show the post id, how many events are stored, today's counts, how many "
        "wait for the district, and whether the store is healthy. Works while "
        "the station runs.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")

    export = commands.add_parser(
        "export",
        help="write events to stdout as CSV or JSON lines",
        description="Write stored events to standard output, oldest first: CSV with a "
        "header row, or one JSON object per line. Without dates, all events.",
    )
    export.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="one day")
    export.add_argument(
        "--from", dest="first", type=_day, metavar="YYYY-MM-DD", help="first day of a range"
    )
    export.add_argument(
        "--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="last day of a range"
    )
    export.add_argument("--format", choices=("csv", "jsonl"), required=True, help="csv or jsonl")

    settings = commands.add_parser(
        "settings",
        help="list every setting with its default, range and meaning",
        description="List every configuration setting: its TOML key, default, allowed "
        "values, meaning and POSKO_* environment variable.",
    )
    settings.add_argument(
        "--toml", action="store_true", help="print a complete example configuration file instead"
    )
    _add_web_commands(commands)
    _add_sync_commands(commands)
    _add_field_commands(commands)
    return parser


def _add_field_commands(commands: Any) -> None:
    """The technician's commands: self-test, calibration, privacy requests."""
    from posko.commands import calibrate, privacy, selftest

    for module in (selftest, calibrate, privacy):
        module.add_command(commands, COMMANDS)


def _add_web_commands(commands: Any) -> None:
    """Subcommands of the guard's screen (web/), registered in COMMANDS."""
    pin = commands.add_parser(
        "set-pin",
        help="set the admin PIN of the guard's page (settings, photos)",
        description="Set the admin PIN that opens the settings and photos on the guard's "
        "page. There is no default PIN: until one is set, the settings stay "
        "locked. The PIN (6 to 12 digits) is asked twice and kept only as a "
        "salted scrypt hash in the data directory (admin_pin.json). It works "
        "while the station runs.",
    )
    pin.add_argument(
        "--stdin",
        action="store_true",
        help="read the PIN from one line of standard input (for installers)",
    )
    COMMANDS["set-pin"] = cmd_set_pin


def _add_sync_commands(commands: Any) -> None:
    """Subcommands of sync and the district receiver (sync/), registered in COMMANDS."""
    from posko.commands.sync import add_parsers

    add_parsers(commands)
    COMMANDS.update({"sync": cmd_sync, "district": cmd_district})


def cmd_sync(config: Config, args: argparse.Namespace) -> int:
    from posko.commands.sync import sync_once

    return sync_once(config, args)


def cmd_district(config: Config, args: argparse.Namespace) -> int:
    from district.cli import district

    return district(args)


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "settings":
            print(example_toml() if args.toml else describe())
            return 0
        overrides: dict[str, Any] = {"data.dir": args.data}
        if args.command == "run":
            overrides.update({"web.listen": args.web, "mqtt.broker": args.broker})
        config = _with_page_settings(load(args.config, overrides=overrides))
        return COMMANDS[args.command](config, args)
    except ConfigError as e:
        print(f"posko: the configuration has {len(e.problems)} problem(s):", file=sys.stderr)
        for problem in e.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except UsageError as e:
        print(f"posko: {e}", file=sys.stderr)
        return 2
    except PoskoError as e:
        print(f"posko: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `posko export | head` is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        print(f"posko: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


def _with_page_settings(config: Config) -> Config:
    """Settings the admin changed on the guard's page (DATA/settings.toml) win."""
    from web.overrides import apply_overrides

    return apply_overrides(config)


def _setup_logging(verbose: bool) -> None:
    # Under systemd, journald adds the time itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=stamp + "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_set_pin(config: Config, args: argparse.Namespace) -> int:
    from getpass import getpass

    from web.pin import PinError, set_pin

    if args.stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass("new admin PIN (6-12 digits): ")
        if getpass("the same PIN again: ") != pin:
            raise UsageError("the two PINs differ; nothing was changed")
    try:
        set_pin(config["data.dir"], pin)
    except PinError as e:
        raise UsageError(str(e)) from None
    print(f"posko: admin PIN set for {config['data.dir']}", file=sys.stderr)
    return 0


def cmd_simulate(config: Config, args: argparse.Namespace) -> int:
    from edge.simulate import simulate

    if args.presses < 1:
        raise UsageError("--presses must be at least 1")
    refuse_production(config, "simulate")

    reader_gone = threading.Event()

    def emit(event: dict[str, Any]) -> None:
        if reader_gone.is_set():
            return
        try:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `posko simulate --jsonl | head` keeps simulating quietly
            reader_gone.set()

    counts = simulate(config, args.presses, seed=args.seed, on_event=emit if args.jsonl else None)
    print(
        f"posko: {counts['presses']} presses, {counts['events']} events stored, "
        f"{counts['no_event']} without an event",
        file=sys.stderr,
    )
    return 0


def open_for_reading(config: Config) -> EventStore:
    """The store, read-write when no station runs (so damage is repaired), else read-only."""
    data_dir = config["data.dir"]
    if not os.path.isdir(data_dir):
        raise PoskoError(f"no data directory at {data_dir}")
    try:
        return EventStore(data_dir, config["post.id"], config["time.zone"])
    except DataDirBusy:
        return EventStore(data_dir, config["post.id"], config["time.zone"], read_only=True)


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from edge.clock import SystemClock
    from edge.tally import summarize

    clock = SystemClock()
    with open_for_reading(config) as store:
        today = store.today(clock.now())
        report = {
            "post": config["post.id"],
            "name": config["post.name"],
            "data_dir": str(store.data_dir),
            "events": store.count,
            "last_seq": store.last_seq,
            "pending": store.pending,
            "acked": store.acked,
            "last_sync": store.acked_at,
            "today": {"date": today, **summarize(store.on_day(today))},
            "store": store.health(),
            "clock": clock.state(),
            "station_running": store.read_only,
        }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(_status_text(report))
    return 0


def _status_text(r: dict[str, Any]) -> str:
    t, s = r["today"], r["store"]
    running = "running" if r["station_running"] else "stopped"
    lines = [
        f"post        {r['post']} ({r['name']})",
        f"data        {r['data_dir']}  (station {running})",
        f"events      {r['events']} stored, last seq {r['last_seq']}",
        f"sync        {r['pending']} waiting for the district (acknowledged up to "
        f"{r['acked']}, last at {r['last_sync'] or 'never'})",
        f"today       {t['date']}: {t['in']} in ({t['in_resident']} residents, "
        f"{t['in_visitor']} visitors), {t['out']} out, {t['refused']} refused, "
        f"{t['by_screening']['fault']} sensor faults",
        f"store       {'healthy' if s['ok'] else 'UNAVAILABLE: ' + str(s['last_error'])}",
        f"clock       {r['clock']}",
    ]
    lines += [f"damage      {d}" for d in s["damage_found"]]
    if s["damaged_files_kept"]:
        lines.append(
            f"set aside   {len(s['damaged_files_kept'])} damaged file(s) kept in "
            f"{r['data_dir']}/damaged"
        )
    return "\n".join(lines)


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    if args.date and (args.first or args.last):
        raise UsageError("give either --date or --from/--to, not both")
    first = args.date or args.first or "0000-01-01"
    last = args.date or args.last or "9999-12-31"
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    write = write_csv if args.format == "csv" else write_jsonl
    with open_for_reading(config) as store:
        write(store.iter_between(first, last), sys.stdout, store.zone)
    return 0


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], int]] = {
    "run": cmd_run,
    "simulate": cmd_simulate,
    "status": cmd_status,
    "export": cmd_export,
}

if __name__ == "__main__":
    sys.exit(main())
