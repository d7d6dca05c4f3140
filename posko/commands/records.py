"""`posko simulate`, `posko status` and `posko export`: the post's records from the command line.

`status` and `export` read beside a running station (through a read-only view of the
store); `simulate` makes up events and so refuses the post's real data directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from datetime import date
from typing import Any

from edge.clock import SystemClock
from edge.config import Config
from edge.events import Event
from edge.export import with_nik_masked, write_csv, write_jsonl
from edge.health import check
from edge.simulate import simulate
from posko.commands.run import refuse_production
from posko.commands.words import local_time, plural
from posko.datadir import open_for_reading
from sensors.errors import UsageError
from sync.acks import read_ignored, summary
from web.figures import Figures

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
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
    sim.set_defaults(handler=cmd_simulate)

    status = commands.add_parser(
        "status",
        help="show the post, event counts, sync backlog and store health",
        description="Show the post id, how many events are stored, today's counts, how many "
        "wait for the district, and whether the store is healthy. Works while "
        "the station runs.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=cmd_status)

    export = commands.add_parser(
        "export",
        help="write events to stdout as CSV or JSON lines",
        description="Write stored events to standard output, oldest first: CSV with a "
        "header row, or one JSON object per line. Without dates, all events. A visitor's "
        "NIK shows only its last 4 digits, as on the page, unless --show-nik is given.",
    )
    export.add_argument("--date", type=_day, metavar="YYYY-MM-DD", help="one day")
    export.add_argument(
        "--from", dest="first", type=_day, metavar="YYYY-MM-DD", help="first day of a range"
    )
    export.add_argument(
        "--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="last day of a range"
    )
    export.add_argument("--format", choices=("csv", "jsonl"), required=True, help="csv or jsonl")
    export.add_argument(
        "--show-nik",
        action="store_true",
        help="write visitors' full NIKs (personal data: logged as a warning each time)",
    )
    export.set_defaults(handler=cmd_export)


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-27") from None


def cmd_simulate(config: Config, args: argparse.Namespace) -> int:
    if args.presses < 1:
        raise UsageError("--presses must be at least 1")
    refuse_production(config, "simulate")

    reader_gone = threading.Event()

    def emit(event: Event) -> None:
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


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    clock = SystemClock()
    with open_for_reading(config) as store:
        health = check(config.post.id, store)
        today = store.today(clock.now())
        report = {
            "post": config.post.id,
            "name": config.post.name,
            "data_dir": str(store.data_dir),
            "events": store.count,
            "last_seq": store.last_seq,
            "pending": store.pending,
            "acked": store.acked,
            "last_sync": store.acked_at,
            "last_sync_local": local_time(store.acked_at, store.zone),
            "acks_ignored": summary(read_ignored(store.data_dir)),
            # The day report's own figures (earlier days' visits included), so that the two
            # never disagree.
            "today": Figures(store).of_day(today).as_json(),
            "store": health.store,
            "health": {"ok": health.ok, "reasons": health.reasons},
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
        f"sync        {plural(r['pending'], 'event')} waiting for the district "
        f"(acknowledged up to seq {r['acked']}; last acknowledged: {r['last_sync_local']})",
        f"today       {t['date']}: {t['in']} in ({plural(t['in_resident'], 'resident')}, "
        f"{plural(t['in_visitor'], 'visitor')}), {t['out']} out",
        f"screening   {plural(t['fevers'], 'fever')} (at or above the threshold), "
        f"{t['refused']} refused, {plural(t['sensor_faults'], 'sensor fault')}",
        f"alerts      {plural(t['emergencies'], 'emergency', 'emergencies')} (Darurat) today",
        *_acks_text(r["acks_ignored"]),
        f"store       {'healthy' if s['ok'] else 'UNAVAILABLE: ' + str(s['last_error'])}",
        f"clock       {r['clock']}",
    ]
    lines += [f"damage      {d}" for d in s["damage_found"]]
    if s["damaged_files_kept"]:
        lines.append(
            f"set aside   {plural(len(s['damaged_files_kept']), 'damaged file')} kept in "
            f"{r['data_dir']}/damaged"
        )
    return "\n".join(lines)


def _acks_text(ignored: dict[str, Any]) -> list[str]:
    """One line when acks were ignored (forged, unsigned, another post's, beyond the log)."""
    if not ignored["total"]:
        return []
    reasons = ", ".join(f"{k} {n}" for k, n in sorted(ignored["by_reason"].items()))
    last = ignored["last"] or {}
    when = f"; last at {last['time']}" if last.get("time") else ""
    return [f"acks        {plural(ignored['total'], 'ack')} IGNORED ({reasons}){when}"]


def cmd_export(config: Config, args: argparse.Namespace) -> int:
    if args.date and (args.first or args.last):
        raise UsageError("give either --date or --from/--to, not both")
    first = args.date or args.first or "0000-01-01"
    last = args.date or args.last or "9999-12-31"
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    write = write_csv if args.format == "csv" else write_jsonl
    if args.show_nik:
        log.warning(
            "exporting visitors' full NIKs (--show-nik) from %s, %s to %s: keep the output as "
            "personal data under UU PDP",
            config.post.data_dir,
            first,
            last,
        )
    with open_for_reading(config) as store:
        events = store.iter_between(first, last)
        write(events if args.show_nik else map(with_nik_masked, events), sys.stdout, store.zone)
    return 0
