"""`posko district run` (the receiver, optionally with its page), `posko district export` and
`posko district keygen`: their options, checking them, and waiting for SIGTERM; the work is
done by `district` (and the keys by `sync.signing`).
Exit status as everywhere: 0 success, 1 runtime failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from district.backends import DB_HELP
from district.emergencies import Rules
from district.export import WRITERS, export
from district.intake import STORE_AT_ONCE
from district.registry import Registry
from district.registry import load as load_registry
from district.report import DEFAULT_ZONE
from district.retention import Retention
from district.storage import QuarantineLimits
from edge.config import Config
from posko.commands import district_users
from posko.stopping import StopSignal
from sensors.errors import ConfigError, PoskoError
from sync.codec import MAX_PAYLOAD
from sync.options import split_address
from sync.signing import Signer, keygen

log = logging.getLogger(__name__)

QUARANTINE = QuarantineLimits()
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")  # a receiver's name, part of its MQTT client id
EMERGENCY_RULES = Rules()
RETENTION = Retention()
RETENTION_FLAGS = (  # flag, Retention field, what it keeps
    ("--visitor-days", "visitor_days", "visitors' details (name, origin, phone, referral)"),
    ("--nik-days", "nik_days", "NIKs (from posts that send them)"),
    ("--events-days", "events_days", "whole events (times, temperatures, verdicts)"),
    ("--quarantine-days", "quarantine_days", "refused payloads (their counts stay)"),
)


def register(commands: Any) -> None:
    """Add `district` with its `run` and `export` subcommands to `commands` (subparsers)."""
    district = commands.add_parser(
        "district",
        help="the district side: receive every post's events, export them",
        description="Commands for the district server: `run` receives the events of every "
        "post from the MQTT broker into an SQLite or PostgreSQL database (and "
        "serves the district page); `export` writes the stored events as CSV or JSON lines.",
    )
    sub = district.add_subparsers(dest="district_command", metavar="COMMAND", required=True)
    _add_run(sub)
    _add_export(sub)
    _add_keygen(sub)
    district_users.register(sub)


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="receive, store and acknowledge every post's batches",
        description="Subscribe to every post's events on the broker, store the batches "
        "that arrive together in one transaction (SQLite or PostgreSQL, duplicates skipped), "
        "and acknowledge each after the commit. Bad payloads go to a quarantine table. "
        "Waits for the broker if it is not up yet. Runs until Ctrl-C or SIGTERM.",
    )
    run.add_argument("--db", required=True, metavar="DB", help=DB_HELP)
    run.add_argument("--broker", required=True, metavar="HOST:PORT", help="MQTT broker")
    run.add_argument("--web", metavar="HOST:PORT", help="serve the district page here")
    run.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics, without a login: keep it "
        "on loopback (127.0.0.1) or a network only the monitoring reaches (docs/district.md)",
    )
    run.add_argument(
        "--name",
        metavar="NAME",
        help="this receiver's name in its MQTT client id, unique on the host (systemd's "
        "instance; default: the process id)",
    )
    run.add_argument(
        "--share",
        metavar="GROUP",
        help="subscribe through $share/GROUP/ so several receivers split the batches",
    )
    run.add_argument("--protocol", choices=("5", "3.1.1"), default="5", help="MQTT version")
    run.add_argument("--username", help="user name at the broker")
    run.add_argument("--password-file", metavar="FILE", help="file holding the password")
    run.add_argument("--tls", action="store_true", help="connect with TLS (never falls back)")
    run.add_argument("--ca-file", metavar="FILE", help="CA certificate for TLS")
    run.add_argument("--cert-file", metavar="FILE", help="client certificate for TLS")
    run.add_argument("--key-file", metavar="FILE", help="key of the client certificate")
    run.add_argument(
        "--max-payload",
        type=int,
        default=MAX_PAYLOAD,
        metavar="BYTES",
        help=f"largest batch accepted (default {MAX_PAYLOAD})",
    )
    run.add_argument(
        "--group-commit-ms",
        type=float,
        default=20.0,
        metavar="MS",
        help="wait at most this long for more batches to store in the same commit (group "
        "commit; default %(default)g, 0: never wait)",
    )
    run.add_argument(
        "--group-commit-max",
        type=int,
        default=STORE_AT_ONCE,
        metavar="N",
        help="store at most this many batches in one commit (default %(default)d; "
        "1 = a commit per batch)",
    )
    run.add_argument("--zone", default=DEFAULT_ZONE, help="time zone of the page's days")
    run.add_argument(
        "--escalate-after",
        type=float,
        default=EMERGENCY_RULES.escalate_after_s / 60,
        metavar="MINUTES",
        help="an emergency nobody acknowledged for this long flashes on the page "
        "(default %(default)g)",
    )
    run.add_argument(
        "--silent-after",
        type=float,
        default=EMERGENCY_RULES.silent_after_s / 3600,
        metavar="HOURS",
        help="flag a post not heard from for this many daytime hours, 06:00-22:00 in "
        "--zone; the night does not count (default %(default)g)",
    )
    run.add_argument(
        "--registry",
        metavar="FILE",
        help="TOML file naming the district's kecamatan, desa and expected posts, for the "
        "page (example: district/regions/pesawaran.toml)",
    )
    for flag, field, what in RETENTION_FLAGS:
        run.add_argument(
            flag,
            type=int,
            default=getattr(RETENTION, field),
            metavar="DAYS",
            help=f"keep {what} this many days (default %(default)s; docs/privacy.md)",
        )
    run.add_argument(
        "--quarantine-rows",
        type=int,
        default=QUARANTINE.rows,
        metavar="N",
        help="keep the newest N refused payloads of each post (default %(default)s), each "
        f"cut to {QUARANTINE.payload_bytes // 1024} KiB; the others are only counted",
    )
    run.add_argument(
        "--signing-key",
        metavar="FILE",
        help="sign every ack with this Ed25519 key (from `posko district keygen`); without "
        "it acks go unsigned and posts ignore them unless they set mqtt.insecure_acks",
    )
    run.set_defaults(handler=run_district, fail=run.error)


def _add_keygen(sub: Any) -> None:
    keys = sub.add_parser(
        "keygen",
        help="make the district's ack signing key pair",
        description="Write a new Ed25519 key pair into DIR: district.key (PEM PKCS#8, mode "
        "0600, for `posko district run --signing-key`) and district.pub (PEM, to install "
        "on every post and list in mqtt.district_keys). An existing key is never "
        "overwritten: to rotate, make the new pair in another directory.",
    )
    keys.add_argument("dir", metavar="DIR", help="directory for district.key and district.pub")
    keys.set_defaults(handler=keygen_district, fail=keys.error)


def _add_export(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write the district's events as CSV or JSON lines",
        description="Write every stored event (of every post) to standard output, by post "
        "and seq: CSV with a header row, or one JSON object per line. --from and "
        "--to pick local days in --zone; without them, everything.",
    )
    export.add_argument("--db", required=True, metavar="DB", help=DB_HELP)
    export.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day")
    export.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day")
    export.add_argument("--format", choices=tuple(WRITERS), required=True)
    export.add_argument("--zone", default=DEFAULT_ZONE, help="time zone of the days")
    export.add_argument(
        "--show-nik",
        action="store_true",
        help="write full NIKs (masked by default); the choice is logged",
    )
    export.set_defaults(handler=export_district, fail=export.error)


def run_district(config: Config, args: argparse.Namespace) -> int:
    """Receive (and serve the page) until SIGTERM or Ctrl-C; `config` is the post's, unused."""
    # Imported here: the receiver, its page and Flask would slow every other command.
    from district.server import district_link
    from posko.runtime import DistrictRuntime

    zone = _zone(args)
    web = _address(args, args.web, "--web") if args.web else None
    metrics = _address(args, args.metrics, "--metrics") if args.metrics else None
    if args.name is not None and not NAME.fullmatch(args.name):
        args.fail("--name must be 1-32 letters, digits, '-' or '_'")
    link = district_link(
        _address(args, args.broker, "--broker"),
        args.name,
        protocol=args.protocol,
        username=args.username,
        password=_password(args.password_file),
        tls=args.tls or bool(args.ca_file),
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )
    signer = Signer.from_file(args.signing_key) if args.signing_key else None
    if not 0 <= args.group_commit_ms <= 1000:
        args.fail("--group-commit-ms must be between 0 and 1000")
    if not 1 <= args.group_commit_max <= 10_000:
        args.fail("--group-commit-max must be between 1 and 10000")
    if args.quarantine_rows < 1:
        args.fail("--quarantine-rows must be at least 1")
    quarantine = replace(QUARANTINE, rows=args.quarantine_rows)
    keep = Retention(**{field: getattr(args, field) for _, field, _ in RETENTION_FLAGS})
    if problems := keep.problems():
        args.fail("; ".join(problems))
    service = DistrictRuntime(
        args.db,
        link,
        share=args.share,
        max_payload=args.max_payload,
        group_commit_ms=args.group_commit_ms,
        group_commit_max=args.group_commit_max,
        web=web,
        metrics=metrics,
        zone=zone.key,
        signer=signer,
        quarantine=quarantine,
        keep=keep,
        registry=_registry(args),
        rules=_rules(args),
    )
    with StopSignal() as stop, service:
        print(f"posko: {service.describe()}", file=sys.stderr, flush=True)
        stop.wait()
    return 0


def _registry(args: argparse.Namespace) -> Registry | None:
    """The registry `--registry` names (a bad file is bad usage: exit 2, every problem)."""
    if not args.registry:
        return None
    try:
        return load_registry(args.registry)
    except ConfigError as e:
        args.fail(str(e))
        raise  # not reached: fail() exits


def _rules(args: argparse.Namespace) -> Rules:
    """When an emergency escalates and a post counts as silent (bad values: exit 2)."""
    if not 0 < args.escalate_after <= 24 * 60:
        args.fail("--escalate-after must be more than 0 and at most 1440 minutes")
    if not 0 < args.silent_after <= 24 * 7:
        args.fail("--silent-after must be more than 0 and at most 168 hours")
    return Rules(escalate_after_s=args.escalate_after * 60, silent_after_s=args.silent_after * 3600)


def keygen_district(config: Config, args: argparse.Namespace) -> int:
    """Make the key pair; print the public key's id and where each file went."""
    private, public = keygen(args.dir)
    key = Signer.from_file(private)
    print(f"posko: signing key {private} (keep it secret, mode 0600)", file=sys.stderr)
    print(
        f"posko: public key {public} (key id {key.key_id}): install it on every post",
        file=sys.stderr,
    )
    return 0


def export_district(config: Config, args: argparse.Namespace) -> int:
    """Write the stored events to standard output; `config` is the post's, unused."""
    zone = _zone(args)
    first, last = _day(args, args.first or "0001-01-01"), _day(args, args.last or "9999-12-31")
    if first > last:
        args.fail(f"--from {first} is after --to {last}")
    days = (first, last) if (args.first or args.last) else None
    export(args.db, sys.stdout, fmt=args.format, zone=zone, days=days, show_nik=args.show_nik)
    return 0


# Usage errors go through argparse (`args.fail`): the usage line, the message, status 2.


def _address(args: argparse.Namespace, text: str, flag: str) -> tuple[str, int]:
    try:
        return split_address(text)
    except ValueError as e:
        args.fail(f"{flag}: {e}")
        raise


def _day(args: argparse.Namespace, text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        args.fail(f"{text!r} is not a date like 2026-11-27")
        raise


def _zone(args: argparse.Namespace) -> ZoneInfo:
    try:
        return ZoneInfo(args.zone)
    except (ZoneInfoNotFoundError, ValueError):
        args.fail(f"--zone {args.zone!r} is not a known time zone")
        raise


def _password(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as e:
        raise PoskoError(f"cannot read the password file {path}: {e.strerror}") from None
