"""`posko settings` (every setting, or an example file) and `posko set-pin` (the admin PIN
of the guard's page)."""

from __future__ import annotations

import argparse
import sys
from getpass import getpass
from typing import Any

from edge.config import Config
from posko.datadir import as_data_owner, nearest
from sensors.errors import UsageError
from web.pin import PinError, set_pin


def register(commands: Any) -> None:
    settings = commands.add_parser(
        "settings",
        help="list every setting with its default, range and meaning",
        description="List every configuration setting: its TOML key, default, allowed "
        "values, meaning and POSKO_* environment variable.",
    )
    settings.add_argument(
        "--toml", action="store_true", help="print a complete example configuration file instead"
    )
    # Needs no configuration: it describes them (handled by posko.cli before loading one).
    settings.set_defaults(handler=None)

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
    pin.set_defaults(handler=cmd_set_pin)


def cmd_set_pin(config: Config, args: argparse.Namespace) -> int:
    if args.stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass("new admin PIN (6-12 digits): ")
        if getpass("the same PIN again: ") != pin:
            raise UsageError("the two PINs differ; nothing was changed")
    data_dir = config.post.data_dir
    try:
        # Under sudo, as the data directory's owner: the station must be able to read it.
        with as_data_owner(nearest(data_dir)):
            set_pin(data_dir, pin)
    except PinError as e:
        raise UsageError(str(e)) from None
    print(f"posko: admin PIN set for {data_dir}", file=sys.stderr)
    return 0
