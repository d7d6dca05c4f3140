"""`posko privacy`: find a data subject's visitor records and erase them (UU PDP No. 27/2022).

Also starts the retention thread of `posko run` (edge/retention.py). An erasure rewrites the
records in place and is itself recorded as a NOTE event, which sync carries to the district.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import datetime
from typing import Any

from edge.config import Config
from edge.events import Kind, parse_time
from edge.store import EventStore
from sensors.errors import DataDirBusy, PoskoError

log = logging.getLogger(__name__)

REASON = "data subject request"
RECORD_TIMEOUT_S = 30.0


class PrivacyError(PoskoError):
    """A privacy request that cannot be carried out as asked."""


def add_command(commands: Any, registry: dict[str, Any]) -> None:
    """Register `posko privacy find|erase`."""
    privacy = commands.add_parser(
        "privacy",
        help="find or erase a visitor's personal data (UU PDP requests)",
        description="Answer a data subject's request under UU PDP No. 27/2022: list the "
        "visitor records held for a name or NIK, or erase them. Erasing replaces "
        "the personal details with a purge mark (the entry itself and its "
        "temperature stay counted), deletes the entry's photo, and records the "
        "erasure as an event that sync carries to the district.",
    )
    actions = privacy.add_subparsers(dest="action", metavar="ACTION", required=True)
    find = actions.add_parser("find", help="list the visitor records matching a name or NIK")
    _add_selectors(find, seq=False)
    erase = actions.add_parser(
        "erase",
        help="erase visitor records (the station must be stopped)",
        description="Erase the personal details of the chosen visitor records. The station "
        "must be stopped (it owns the data directory); without --yes, the records "
        "are listed and confirmation is asked.",
    )
    _add_selectors(erase, seq=True)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    registry["privacy"] = cmd_privacy


def _add_selectors(parser: argparse.ArgumentParser, *, seq: bool) -> None:
    if seq:
        parser.add_argument(
            "--seq", type=int, action="append", default=[], metavar="N", help="a visitor record"
        )
    parser.add_argument("--name", metavar="TEXT", help="part of the name (any case)")
    parser.add_argument("--nik", metavar="DIGITS", help="the 16-digit NIK")


def cmd_privacy(config: Config, args: argparse.Namespace) -> int:
    from posko.cli import open_for_reading
    from sensors.errors import UsageError

    if not (args.name or args.nik or getattr(args, "seq", None)):
        raise UsageError("say whose records: --name TEXT or --nik DIGITS (or --seq N)")
    if args.nik is not None and not args.nik.isdigit():
        raise UsageError("--nik takes digits only")
    if not os.path.isdir(config["data.dir"]):
        raise PrivacyError(f"no data directory at {config['data.dir']}")
    if args.action == "find":
        with open_for_reading(config) as store:
            found = matches(visitor_records(store), args.name, args.nik)
        print(table(found, store))
        return 0
    return _erase(config, args)


# -- finding ---------------------------------------------------------------------------


def visitor_records(store: EventStore) -> Iterable[dict[str, Any]]:
    """Every VISITOR event that still holds personal details, oldest first."""
    for event in store.iter_between("0000-01-01", "9999-12-31"):
        data = event.get("data")
        if event["kind"] == Kind.VISITOR and isinstance(data, dict) and not data.get("purged"):
            yield event


def matches(
    events: Iterable[dict[str, Any]],
    name: str | None = None,
    nik: str | None = None,
    seqs: Iterable[int] = (),
) -> list[dict[str, Any]]:
    wanted, text = set(seqs), (name or "").casefold()
    found = []
    for event in events:
        data = event["data"]
        if (
            event["seq"] in wanted
            or (text and text in str(data.get("name", "")).casefold())
            or (nik and str(data.get("nik", "")) == nik)
        ):
            found.append(event)
    return found


def mask_nik(nik: Any) -> str:
    text = str(nik or "")
    return "*" * max(len(text) - 4, 0) + text[-4:] if text else "-"


def table(events: list[dict[str, Any]], store: EventStore) -> str:
    if not events:
        return "no visitor records match"
    lines = [f"{'seq':>8}  {'time':16}  {'NIK':16}  name"]
    for event in events:
        local = parse_time(event["time"]).astimezone(store.zone).strftime("%Y-%m-%d %H:%M")
        data = event["data"]
        lines.append(
            f"{event['seq']:>8}  {local:16}  {mask_nik(data.get('nik')):16}  "
            f"{data.get('name', '-')}"
        )
    return "\n".join(lines)


# -- erasing ---------------------------------------------------------------------------


def _erase(config: Config, args: argparse.Namespace) -> int:
    from edge.clock import SystemClock

    try:
        store = EventStore(config["data.dir"], config["post.id"], config["time.zone"])
    except DataDirBusy as e:
        who = f"pid {e.pid}" if e.pid else "another process"
        raise PrivacyError(
            f"the station is running ({who}) and owns the records: stop the station "
            "or use the guard's screen"
        ) from None
    with store:
        found = matches(visitor_records(store), args.name, args.nik, args.seq)
        missing = sorted(set(args.seq) - {e["seq"] for e in found})
        if missing:
            raise PrivacyError(
                "not a visitor record holding personal details: "
                + ", ".join(f"#{s}" for s in missing)
            )
        if not found:
            print("no visitor records match; nothing erased")
            return 0
        print(table(found, store))
        if not args.yes and not _confirm(len(found)):
            print("nothing erased")
            return 1
        clock = SystemClock()
        note = erase(store, [e["seq"] for e in found], clock.now(), clock.state())
    print(f"erased {len(note['seqs'])} record(s); recorded as event #{note['event']}")
    return 0


def _confirm(n: int) -> bool:
    if not sys.stdin.isatty():
        raise PrivacyError("add --yes to erase without a terminal to confirm on")
    return input(f"erase these {n} record(s)? this cannot be undone [y/N] ").strip() in ("y", "Y")


def erase(
    store: EventStore, seqs: list[int], moment: datetime, clock: str = "unknown"
) -> dict[str, Any]:
    """Redact these visitor records everywhere on the Pi (the store must be its only writer),
    delete their entries' photos, then record the erasure as a NOTE event."""
    from edge.station import photo_path

    wanted = set(seqs)
    refs = {e["seq"]: e.get("ref") for e in visitor_records(store) if e["seq"] in wanted}
    done = store.redact(
        lambda _day, event: event["kind"] == Kind.VISITOR and event["seq"] in wanted,
        active=True,
    )
    photos = []
    for seq in done:
        ref = refs.get(seq)
        path = photo_path(store.data_dir, ref) if ref else None
        if path is not None and path.exists():
            path.unlink()
            photos.append(ref)
    erasure: dict[str, Any] = {"seqs": sorted(done), "reason": REASON}
    if photos:
        erasure["photos"] = sorted(photos)
    event = store.append(Kind.NOTE, moment=moment, clock=clock, data={"erasure": erasure})
    log.info("erasure of %d visitor record(s) recorded as event %d", len(done), event["seq"])
    return {**erasure, "event": event["seq"]}


# -- in `posko run` ---------------------------------------------------------------------


def start_privacy(post: Any, services: ExitStack) -> Any:
    """Start the retention thread of a running post; it stops with `services`."""
    from edge.retention import Retention

    def record(data: dict[str, Any]) -> None:
        outcome = post.station.record(Kind.NOTE, data=data).result(RECORD_TIMEOUT_S)
        if outcome.event is None:
            log.error("retention: the purge was done but not recorded: %s", outcome.message)

    retention = Retention(post.store, lambda: post.config, record, post.clock.now)
    services.callback(retention.close)
    post.retention = retention
    return retention.start()
