"""`posko calibrate`: set the thermometer's offset against a reference thermometer.

The sensor's raw readings (no calibration applied) are compared with the reference; the
new `[thermometer] offset_c` is written into the config file, and a NOTE event records it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from edge.clock import kernel_clock_state
from edge.config import Config, load
from edge.events import Kind
from edge.journal import atomic_write
from edge.post import open_thermometer
from edge.settings import BY_KEY
from posko.commands.selftest import Technician
from posko.datadir import as_data_owner, open_store
from sensors.errors import PoskoError
from sensors.thermometer import Thermometer
from web.overrides import load_overrides, save_overrides

KEY = "thermometer.offset_c"
_SECTION = re.compile(r"^\s*\[\s*thermometer\s*\]\s*(#.*)?$")
_ANY_SECTION = re.compile(r"^\s*\[")
_OFFSET = re.compile(r"^(?P<head>\s*offset_c\s*=\s*)(?P<value>[^#\s]*)(?P<tail>\s*(#.*)?)$")


class CalibrationRefused(PoskoError):
    """The readings or the result cannot be trusted; nothing was changed."""


@dataclass(frozen=True)
class Calibration:
    """What a calibration found: raw readings against a reference, old and new offset."""

    reference_c: float
    readings: list[float]
    faults: list[str]
    gain: float
    previous_offset_c: float

    @property
    def median_raw(self) -> float:
        # To the hundredth, like the offset: the median of an even count can end in a half
        # hundredth, and the rounded offset would then leave "after" 0.01 off the reference.
        return round(statistics.median(self.readings), 2)

    @property
    def offset_c(self) -> float:
        # calibrated = raw * gain + offset, so this offset makes the median read as the reference
        return round(self.reference_c - self.median_raw * self.gain, 2)

    @property
    def spread(self) -> float:
        return round(max(self.readings) - min(self.readings), 2)

    def shown(self, offset: float) -> float:
        return round(self.median_raw * self.gain + offset, 2)

    def event_data(self) -> dict[str, Any]:
        return {
            "calibration": {
                "offset_c": self.offset_c,
                "previous_offset_c": self.previous_offset_c,
                "reference_c": self.reference_c,
                "gain": self.gain,
                "readings": self.readings,
                "faults": self.faults,
            }
        }


def take_readings(
    thermometer: Thermometer, n: int, reference: float, config: Config
) -> Calibration:
    """N raw readings; faults are dropped, and a majority must be valid."""
    values, faults = [], []
    for _ in range(n):
        reading = thermometer.read()
        if reading.fault is None and reading.celsius is not None:
            values.append(round(reading.celsius, 2))
        else:
            faults.append(reading.fault or "no_value")
    if len(values) * 2 <= n:
        raise CalibrationRefused(
            f"only {len(values)} of {n} readings were valid (faults: {', '.join(faults)}); "
            "check the sensor's wiring and try again"
        )
    options = config.thermometer
    return Calibration(reference, values, faults, options.gain, options.offset_c)


def check_range(calibration: Calibration) -> None:
    """Refuse an offset the setting does not allow: the sensor or the aim is wrong."""
    setting = BY_KEY[KEY]
    low, high = setting.min, setting.max
    assert low is not None and high is not None
    if not low <= calibration.offset_c <= high:
        raise CalibrationRefused(
            f"the new offset {calibration.offset_c:+.2f} °C is outside the allowed "
            f"{low:+g}..{high:+g} °C: the sensor reads {calibration.median_raw:.2f} °C against "
            f"a reference of {calibration.reference_c:.2f} °C. Check that both aim at the same "
            "target at the same distance, and the sensor's wiring; nothing was changed"
        )


def check_spread(calibration: Calibration, limit: float, force: bool) -> None:
    """Refuse readings that disagree with each other: their median is not a measurement."""
    if calibration.spread <= limit or force:
        return
    raise CalibrationRefused(
        f"the readings spread over {calibration.spread:.2f} °C "
        f"({' '.join(f'{v:.2f}' for v in calibration.readings)}), more than the "
        f"{limit:.2f} °C that thermometer.calibration_spread_c allows: hold the sensor and the "
        "target still and measure again (or add --force); nothing was changed"
    )


def report(calibration: Calibration, config_path: Path, limit: float) -> str:
    """Before and after, for the technician to confirm."""
    c = calibration
    faults = f" ({len(c.faults)} fault(s) rejected: {', '.join(c.faults)})" if c.faults else ""
    lines = [
        f"readings    {' '.join(f'{v:.2f}' for v in c.readings)} °C raw{faults}",
        f"median      {c.median_raw:.2f} °C raw, spread {c.spread:.2f} °C, gain {c.gain:g}",
        f"reference   {c.reference_c:.2f} °C",
        f"before      {c.shown(c.previous_offset_c):.2f} °C with offset "
        f"{c.previous_offset_c:+.2f} (current)",
        f"after       {c.shown(c.offset_c):.2f} °C with offset {c.offset_c:+.2f} (new)",
        f"config      {config_path}",
    ]
    if c.spread > limit:
        lines.append(
            f"warning     the readings spread over {c.spread:.2f} °C: hold the sensor and "
            "the target still and consider measuring again"
        )
    return "\n".join(lines)


def set_offset(text: str, offset: float) -> str:
    """The TOML text with `[thermometer] offset_c` set; every other line is kept."""
    lines = text.splitlines(keepends=True)
    value = f"{offset:.2f}"
    start = next((i for i, line in enumerate(lines) if _SECTION.match(line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[thermometer]\noffset_c = {value}\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if _ANY_SECTION.match(lines[i])), len(lines)
    )
    for i in range(start + 1, end):
        found = _OFFSET.match(lines[i].rstrip("\r\n"))
        if found:
            newline = lines[i][len(lines[i].rstrip("\r\n")) :]
            lines[i] = f"{found['head']}{value}{found['tail']}{newline}"
            return "".join(lines)
    keys = [i for i in range(start + 1, end) if lines[i].strip() and lines[i].strip()[0] != "#"]
    at = (keys[-1] if keys else start) + 1  # after the section's last setting
    if not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, f"offset_c = {value}\n")
    return "".join(lines)


def save_offset(config_path: Path, offset: float) -> None:
    """Write the new offset into the config file, validated first, replaced atomically."""
    before = config_path.stat()
    text = set_offset(config_path.read_text(encoding="utf-8"), offset)
    with tempfile.NamedTemporaryFile(
        "w", suffix=".toml", dir=config_path.parent, prefix=".calibrate-", encoding="utf-8"
    ) as trial:
        trial.write(text)
        trial.flush()
        checked = load(trial.name, env={})  # raises ConfigError listing every problem
    if checked[KEY] != offset:
        raise CalibrationRefused(
            f"{config_path} sets {KEY} in a way this command cannot edit; set it to "
            f"{offset:.2f} by hand"
        )
    atomic_write(config_path, text.encode("utf-8"))
    os.chmod(config_path, before.st_mode & 0o7777)  # the file may hold MQTT credentials
    if os.geteuid() == 0:
        os.chown(config_path, before.st_uid, before.st_gid)


def update_page_override(data_dir: Path, offset: float) -> bool:
    """A page setting wins over the file: keep it in step; True when there was one."""
    stored = load_overrides(data_dir)
    if KEY not in stored:
        return False
    stored[KEY] = offset
    save_overrides(data_dir, stored)
    return True


def calibrate(
    config: Config,
    config_path: Path,
    reference: float,
    *,
    thermometer: Thermometer,
    readings: int = 5,
    technician: Technician | None = None,
    out: TextIO | None = None,
    force: bool = False,
) -> Calibration | None:
    """Measure, show, confirm, save and record; None when the technician declines.
    Readings spread wider than `thermometer.calibration_spread_c` are refused unless `force`."""
    technician = technician or Technician()
    out = out or sys.stdout
    # Holding the store also keeps the station from starting meanwhile.
    with open_store(config, "calibration", create=True) as store:
        technician.say(f"reading the sensor {readings} times: hold it on the target…")
        result = take_readings(thermometer, readings, reference, config)
        limit = config.thermometer.calibration_spread_c
        check_range(result)
        print(report(result, config_path, limit), file=out, flush=True)
        check_spread(result, limit, force)
        if not technician.ask(f"save offset_c = {result.offset_c:.2f} to {config_path}?"):
            technician.say("nothing was changed")
            return None
        save_offset(config_path, result.offset_c)
        data_dir = config.post.data_dir
        with as_data_owner(data_dir):
            page = update_page_override(data_dir, result.offset_c)
            event = store.append(
                Kind.NOTE,
                moment=datetime.now(UTC),
                clock=kernel_clock_state(),
                data=result.event_data(),
            )
    also = " and in the guard's page settings" if page else ""
    technician.say(
        f"saved offset_c = {result.offset_c:.2f} in {config_path}{also}; recorded as event "
        f"{event['seq']}; it applies when the station starts (`sudo systemctl start posko`)"
    )
    return result


def cmd_calibrate(config: Config, args: argparse.Namespace) -> int:
    """The `posko calibrate` command."""
    if config.source == "defaults":
        print(
            "posko: there is no configuration file to save the offset in: create one with "
            "`posko settings --toml > /etc/posko/config.toml` (or give --config FILE)",
            file=sys.stderr,
        )
        return 2
    reference = args.reference if args.reference is not None else _ask_reference()
    low, high = config.thermometer.plausible_min_c, config.thermometer.plausible_max_c
    if reference is None or not low <= reference <= high:
        print(
            f"posko: the reference must be a temperature from {low} to {high} °C", file=sys.stderr
        )
        return 2
    if args.readings < 1:
        print("posko: --readings must be at least 1", file=sys.stderr)
        return 2
    thermometer = _raw_thermometer(config)
    if thermometer is None:
        print("posko: thermometer.driver is none: there is nothing to calibrate", file=sys.stderr)
        return 2
    try:
        result = calibrate(
            config,
            Path(config.source),
            reference,
            thermometer=thermometer,
            readings=args.readings,
            technician=Technician(yes=args.yes),
            force=args.force,
        )
    finally:
        thermometer.close()
    return 0 if result is not None else 1


def _raw_thermometer(config: Config) -> Thermometer | None:
    """The configured driver without its calibration: the offset is what we measure."""
    calibrated: Any = open_thermometer(config)
    return None if calibrated is None else calibrated.driver


def _ask_reference(read: Callable[[], str] = sys.stdin.readline) -> float | None:
    print("the reference thermometer reads (°C): ", end="", file=sys.stderr, flush=True)
    try:
        return float(read().strip().replace(",", "."))
    except ValueError:
        return None


def register(commands: Any) -> None:
    """The `calibrate` subcommand."""
    parser = commands.add_parser(
        "calibrate",
        help="set the thermometer's offset against a reference thermometer",
        description="Hold a calibrated reference thermometer and the post's sensor on the "
        "same target. The sensor is read several times without calibration, faults "
        "are rejected, and the offset that makes its median match the reference is "
        "shown before and after. Once confirmed it is saved as [thermometer] "
        "offset_c in the configuration file (every other line is kept) and recorded "
        "as an event. The station must be stopped first: it owns the thermometer.",
    )
    parser.add_argument(
        "--reference",
        type=float,
        metavar="C",
        help="what the reference thermometer reads, in °C (asked when not given)",
    )
    parser.add_argument(
        "--readings", type=int, default=5, metavar="N", help="sensor readings to take"
    )
    parser.add_argument("--yes", action="store_true", help="save without asking to confirm")
    parser.add_argument(
        "--force",
        action="store_true",
        help="save even when the readings spread over more than "
        "thermometer.calibration_spread_c (default 0.5 °C)",
    )
    parser.add_argument(
        "--mock",
        action="store_true",
        help="no GPIO pins are used here, so this changes nothing: the thermometer is the "
        'configured one (thermometer.driver = "simulated" for practice)',
    )
    parser.set_defaults(handler=cmd_calibrate)
