"""`posko district user add|remove|list|passwd`: the district page's users, kept in the
district database (`district.accounts`). There is no default user and no default password:
the first admin is added with this command on the server.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from district.accounts import (
    MIN_PASSWORD,
    ROLES,
    AccountError,
    add_user,
    check_name,
    check_password,
    opened,
    remove_user,
    set_password,
    users,
)
from district.backends import DB_HELP
from district.report import DEFAULT_ZONE
from district.storage import is_address, shown
from edge.config import Config
from edge.events import parse_time
from sensors.errors import PoskoError, UsageError

ROLE_HELP = "viewer: sees the page; operator: also acknowledges and handles emergencies; "
ROLE_HELP += "admin: also manages posts, regions and users"


def register(sub: Any) -> None:
    """Add `user` with its subcommands to `posko district`'s subparsers."""
    user = sub.add_parser(
        "user",
        help="the district page's users: add, remove, list, new password",
        description=f"Users of the district page and their roles ({ROLE_HELP}). Passwords "
        f"({MIN_PASSWORD} characters or more) are kept as scrypt hashes; removing a user or "
        "giving a new password ends their sessions. Each change is written to the audit table.",
    )
    commands = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    add = commands.add_parser("add", help="add a user (asks for the password twice)")
    add.add_argument("name", help="user name: lower-case letters, digits, '.', '-', '_'")
    add.add_argument("--role", choices=ROLES, required=True, help=ROLE_HELP)
    _password_flag(add)
    remove = commands.add_parser("remove", help="remove a user and end their sessions")
    remove.add_argument("name")
    listing = commands.add_parser("list", help="every user: name, role, created, last login")
    listing.add_argument("--zone", default=DEFAULT_ZONE, help="time zone of the times shown")
    passwd = commands.add_parser("passwd", help="a new password (ends the user's sessions)")
    passwd.add_argument("name")
    _password_flag(passwd)
    for parser, handler in ((add, _add), (remove, _remove), (listing, _list), (passwd, _passwd)):
        parser.add_argument("--db", required=True, metavar="DB", help=DB_HELP)
        parser.set_defaults(handler=handler, fail=parser.error)


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input (for scripts)",
    )


def _add(config: Config, args: argparse.Namespace) -> int:
    name = _name(args.name)
    password = _password(args)
    with opened(args.db) as handle:
        add_user(handle, name, args.role, password, by=_by())
    print(f"posko: user {name} ({args.role}) added to {shown(args.db)}", file=sys.stderr)
    return 0


def _remove(config: Config, args: argparse.Namespace) -> int:
    with opened(_existing(args.db)) as handle:
        remove_user(handle, args.name, by=_by())
    print(f"posko: user {args.name} removed; their sessions ended", file=sys.stderr)
    return 0


def _passwd(config: Config, args: argparse.Namespace) -> int:
    name = _name(args.name)
    password = _password(args)
    with opened(_existing(args.db)) as handle:
        set_password(handle, name, password, by=_by())
    print(f"posko: new password for {name}; their sessions ended", file=sys.stderr)
    return 0


def _list(config: Config, args: argparse.Namespace) -> int:
    try:
        zone = ZoneInfo(args.zone)
    except (ZoneInfoNotFoundError, ValueError):
        args.fail(f"--zone {args.zone!r} is not a known time zone")
    with opened(_existing(args.db)) as handle:
        found = users(handle)
    if not found:
        print(f"posko: no users yet; add the first admin with: posko district user add NAME "
              f"--role admin --db {shown(args.db)}", file=sys.stderr)  # fmt: skip
        return 0
    print(f"{'name':<32}  {'role':<8}  {'created':<16}  last login")
    for user in found:
        created, last = _local(user.created, zone), _local(user.last_login, zone) or "never"
        print(f"{user.name:<32}  {user.role:<8}  {created:<16}  {last}")
    return 0


def _name(text: str) -> str:
    try:
        return check_name(text)
    except AccountError as e:
        raise UsageError(str(e)) from None


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name} ({MIN_PASSWORD}+ characters): ")
        if getpass.getpass("the same password again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    try:
        return check_password(password)
    except AccountError as e:
        raise UsageError(str(e)) from None


def _existing(db: str) -> str:
    if not is_address(db) and not Path(db).is_file():
        raise PoskoError(f"no district database at {db}")
    return db


def _by() -> str:
    """Who made the change, for the audit table: the server's user, not a page user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


def _local(text: str | None, zone: ZoneInfo) -> str:
    if not text:
        return ""
    moment: datetime = parse_time(text).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M")
