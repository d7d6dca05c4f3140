"""The `posko` command: one entry point, one module per command family in `posko/commands/`.

Exit status: 0 success, 1 runtime failure (one line on stderr), 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from edge import __version__
from edge.config import Config, describe, example_toml, load
from posko.commands import (
    calibrate,
    district,
    privacy,
    records,
    run,
    selftest,
    settings,
    sync,
)
from sensors.errors import ConfigError, PoskoError, UsageError
from web.overrides import apply_overrides

log = logging.getLogger("posko")

# In the order `posko --help` lists them.
FAMILIES = (run, records, settings, sync, district, selftest, calibrate, privacy)


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
    for family in FAMILIES:
        family.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.handler is None:  # `posko settings` describes the configuration
            print(example_toml() if args.toml else describe())
            return 0
        config = _load_config(args)
        code: int = args.handler(config, args)
        return code
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


def _load_config(args: argparse.Namespace) -> Config:
    """File < POSKO_* variables < flags; then the settings the admin changed on the guard's
    page (DATA/settings.toml), which win."""
    overrides: dict[str, Any] = {"data.dir": args.data}
    for flag, key in getattr(args, "overrides", {}).items():
        overrides[key] = getattr(args, flag)
    return apply_overrides(load(args.config, overrides=overrides))


def _setup_logging(verbose: bool) -> None:
    # Under systemd, journald adds the time itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=stamp + "%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())
