"""`posko privacy`: find a data subject's visitor records and erase them (UU PDP No. 27/2022).

The erasure itself is `edge.erasure.erase`; this module is the technician's command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from edge.clock import SystemClock
from edge.config import Config
from edge.erasure import erase, matches, visitor_records
from edge.events import Event, mask_nik, parse_time
from edge.store import EventStore
from posko.datadir import open_for_reading, open_store
from sensors.errors import PoskoError, UsageError

log = logging.getLogger(__name__)

NIK_DIGITS = 16  # Nomor Induk Kependudukan


class PrivacyError(PoskoError):
    """A privacy request that cannot be carried out as asked."""


def register(commands: Any) -> None:
    """`posko privacy find|erase`."""
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
    privacy.set_defaults(handler=cmd_privacy)


def _add_selectors(parser: argparse.ArgumentParser, *, seq: bool) -> None:
    if seq:
        parser.add_argument(
            "--seq",
            type=int,
            action="append",
            default=[],
            metavar="N",
            help="a visitor: the number the Pendatang page shows (#N), or a record's seq "
            "from `posko privacy find`",
        )
    parser.add_argument("--name", metavar="TEXT", help="part of the name (any case)")
    parser.add_argument("--nik", metavar="DIGITS", help=f"the {NIK_DIGITS}-digit NIK")


def cmd_privacy(config: Config, args: argparse.Namespace) -> int:
    if not (args.name or args.nik or getattr(args, "seq", None)):
        also = " (or --seq N)" if args.action == "erase" else ""
        raise UsageError(f"say whose records: --name TEXT or --nik DIGITS{also}")
    if args.nik is not None:
        _check_nik(args.nik)
    if not config.post.data_dir.is_dir():
        raise PrivacyError(f"no data directory at {config.post.data_dir}")
    if args.action == "find":
        with open_for_reading(config) as store:
            found = matches(visitor_records(store), args.name, args.nik)
        print(table(found, store))
        return 0
    return _erase(config, args)


def _check_nik(nik: str) -> None:
    """A NIK is exactly 16 digits; a part of one would match nobody, silently."""
    if not (nik.isascii() and nik.isdigit()):
        raise UsageError("--nik takes digits only")
    if len(nik) != NIK_DIGITS:
        size = "too short" if len(nik) < NIK_DIGITS else "too long"
        raise UsageError(
            f"--nik {nik} is {size}: a NIK has {NIK_DIGITS} digits, this one {len(nik)} "
            "(to search by part of a name, use --name)"
        )


def table(events: list[Event], store: EventStore) -> str:
    """One line per record: the visitor's number on the Pendatang page, then the record."""
    if not events:
        return "no visitor records match"
    lines = [f"{'visitor':>8}  {'record':>8}  {'time':16}  {'NIK':16}  name"]
    for event in events:
        local = parse_time(event["time"]).astimezone(store.zone).strftime("%Y-%m-%d %H:%M")
        data = event["data"]
        visitor = f"#{event['ref']}" if event.get("ref") is not None else "-"
        lines.append(
            f"{visitor:>8}  {event['seq']:>8}  {local:16}  "
            f"{mask_nik(data.get('nik')) or '-':16}  {data.get('name', '-')}"
        )
    return "\n".join(lines)


# -- erasing ---------------------------------------------------------------------------


def _erase(config: Config, args: argparse.Namespace) -> int:
    with open_store(config, "erasing") as store:
        found = matches(visitor_records(store), args.name, args.nik, args.seq)
        known = {e["seq"] for e in found} | {e.get("ref") for e in found}
        missing = sorted(set(args.seq) - known)
        if missing:
            raise PrivacyError(
                "no visitor details are held for "
                + ", ".join(f"#{s}" for s in missing)
                + " (give the number the Pendatang page shows, or one `posko privacy find` "
                "lists)"
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
