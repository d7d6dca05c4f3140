"""Load and validate a post's configuration: TOML file, then `POSKO_*` variables, then flags.

Every problem is collected before anything fails, so a technician fixes a broken file in
one pass; `ConfigError.problems` holds one line per problem.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.options import (
    ButtonOptions,
    CameraOptions,
    PostOptions,
    PrivacyOptions,
    ScreeningOptions,
    ThermometerOptions,
    VoiceOptions,
)
from edge.settings import BY_KEY, PINS, SETTINGS, Setting
from sensors.errors import ConfigError

DEFAULT_PATH = Path("/etc/posko/config.toml")
# Variables that name where things are rather than a setting.
RESERVED_ENV = {"POSKO_CONFIG"}
# A number written the Indonesian way, with a decimal comma: "37,5".
DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_COMMA_LINE = re.compile(r"^\s*(?P<name>[A-Za-z0-9_-]+)\s*=\s*(?P<value>[+-]?\d+,\d+)\s*(#.*)?$")
_SECTION_LINE = re.compile(r"^\s*\[\s*(?P<name>[A-Za-z0-9_-]+)\s*\]")


class Config(Mapping[str, Any]):
    """A validated, read-only view of every setting, keyed by "section.name", with a typed
    view per area of the post (`config.screening.threshold_c`, see `edge.options`)."""

    def __init__(self, values: Mapping[str, Any], source: str = "defaults") -> None:
        self._values = dict(values)
        self.source = source

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, **changes: Any) -> Config:
        """A copy with some settings changed (keys with "__" for "."), validated again."""
        values = dict(self._values)
        for name, value in changes.items():
            values[name.replace("__", ".")] = value
        problems = validate(values)
        if problems:
            raise ConfigError(problems)
        return Config(_coerce(values), self.source)

    @property
    def pins(self) -> dict[str, int]:
        return {name: self[f"pins.{name}"] for name in PINS}

    # Typed views, built once per Config: it never changes, a new setting is a new Config.
    @cached_property
    def post(self) -> PostOptions:
        return PostOptions.from_config(self)

    @cached_property
    def screening(self) -> ScreeningOptions:
        return ScreeningOptions.from_config(self)

    @cached_property
    def thermometer(self) -> ThermometerOptions:
        return ThermometerOptions.from_config(self)

    @cached_property
    def buttons(self) -> ButtonOptions:
        return ButtonOptions.from_config(self)

    @cached_property
    def camera(self) -> CameraOptions:
        return CameraOptions.from_config(self)

    @cached_property
    def privacy(self) -> PrivacyOptions:
        return PrivacyOptions.from_config(self)

    @cached_property
    def voice(self) -> VoiceOptions:
        return VoiceOptions.from_config(self)


def defaults() -> Config:
    return Config({s.key: s.default for s in SETTINGS})


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration in order file < environment < flags, or raise ConfigError."""
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict[str, Any] = {s.key: s.default for s in SETTINGS}
    path = path or env.get("POSKO_CONFIG") or (DEFAULT_PATH if DEFAULT_PATH.exists() else None)
    source = "defaults"
    if path is not None:
        source = str(path)
        values.update(_read_file(Path(path), problems))
    values.update(_read_env(env, problems))
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = value
    problems.extend(validate(values))
    if problems:
        raise ConfigError(problems)
    return Config(_coerce(values), source)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Whole numbers given for decimal settings become floats (TOML `37` for 37.0)."""
    return {
        k: float(v) if BY_KEY[k].type is float and isinstance(v, int) else v
        for k, v in values.items()
    }


def _read_file(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
        return {}
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: cannot read it as TOML: {e}")
        return {}
    data = _parse_toml(path, text, problems)
    found: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            problems.append(f"{section}: settings belong in a [section]; {_suggest(section)}")
            continue
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in BY_KEY:
                problems.append(f"{key}: unknown setting; {_suggest(key)}")
            else:
                found[key] = value
    return found


def _parse_toml(path: Path, text: str, problems: list[str]) -> dict[str, Any]:
    """The file's tables; a number with a decimal comma (invalid TOML) is named with the
    dot to write instead, and read as if dotted, so that the other problems are listed too."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        error = e
    section, lines, commas = "", [], []
    for line in text.splitlines():
        if header := _SECTION_LINE.match(line):
            section = header["name"]
        elif found := _COMMA_LINE.match(line):
            key = f"{section}.{found['name']}" if section else found["name"]
            commas.append(comma_problem(key, found["value"]))
            line = line.replace(found["value"], found["value"].replace(",", "."), 1)
        lines.append(line)
    problems.extend(commas)
    if commas:
        try:
            return tomllib.loads("\n".join(lines))
        except tomllib.TOMLDecodeError as e:
            error = e
    problems.append(f"{path}: cannot read it as TOML: {error}")
    return {}


def comma_problem(where: str, text: str) -> str:
    """The problem line for a decimal comma: configuration numbers take a dot."""
    dotted = text.strip().replace(",", ".")
    return f"{where}: write {dotted} with a dot, not {text.strip()!r} (no decimal comma)"


def _read_env(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    by_env = {s.env: s for s in SETTINGS}
    found: dict[str, Any] = {}
    for name, text in env.items():
        if not name.startswith("POSKO_") or name in RESERVED_ENV:
            continue
        setting = by_env.get(name)
        if setting is None:
            close = difflib.get_close_matches(name, list(by_env), n=1)
            hint = f"did you mean {close[0]}?" if close else "see `posko settings`"
            problems.append(f"{name}: unknown environment variable; {hint}")
            continue
        try:
            found[setting.key] = parse_text(setting, text)
        except ValueError:
            if setting.type is float and DECIMAL_COMMA.match(text.strip()):
                problems.append(comma_problem(name, text))
            else:
                problems.append(f"{name}: expected {setting.allowed()}, got {text!r}")
    return found


def parse_text(setting: Setting, text: str) -> Any:
    """Turn a string (environment variable, form field, flag) into the setting's type."""
    text = text.strip()
    if setting.type is int:
        return int(text, 0)
    if setting.type is float:
        return float(text)
    if setting.type is list:  # comma-separated in a variable or a form field
        return [item.strip() for item in text.split(",") if item.strip()]
    if setting.type is bool:
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(text)
    return text


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(BY_KEY), n=1)
    return f"did you mean {close[0]}?" if close else "see `posko settings`"


def validate(values: Mapping[str, Any]) -> list[str]:
    """Every problem with these values, one line each; an empty list means valid."""
    problems = [p for s in SETTINGS if (p := _check(s, values.get(s.key)))]
    pins: dict[int, str] = {}
    for name in PINS:
        pin = values.get(f"pins.{name}")
        if isinstance(pin, int) and pin in pins:
            problems.append(f"pins.{name}: BCM {pin} is already used by pins.{pins[pin]}")
        elif isinstance(pin, int):
            pins[pin] = name
    bus_pins = {"mlx90614": {2: "I2C SDA", 3: "I2C SCL"}, "ds18b20": {4: "1-wire"}}
    for pin, role in bus_pins.get(values.get("thermometer.driver", ""), {}).items():
        if pin in pins:
            problems.append(f"pins.{pins[pin]}: BCM {pin} is the thermometer's {role} line")
    return problems


def _check(setting: Setting, value: Any) -> str | None:
    where = f"{setting.key}: {value!r}"
    expected = setting.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is float and isinstance(value, str) and DECIMAL_COMMA.match(value.strip()):
        return comma_problem(setting.key, value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        return f"{setting.key}: expected {setting.allowed()}, got {value!r}"
    return _check_value(setting, value, where)


def _check_value(setting: Setting, value: Any, where: str) -> str | None:
    if isinstance(value, list):
        if not all(isinstance(item, str) and item for item in value):
            return f"{setting.key}: expected {setting.allowed()}, got {value!r}"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is not a finite number; allowed: {setting.allowed()}"
    if setting.min is not None and value < setting.min:
        return f"{where} is below the minimum; allowed: {setting.allowed()}"
    if setting.max is not None and value > setting.max:
        return f"{where} is above the maximum; allowed: {setting.allowed()}"
    if setting.choices and value not in setting.choices:
        return f"{where} is not allowed; allowed: {setting.allowed()}"
    if setting.pattern and not re.match(setting.pattern, value):
        return f"{setting.key}: expected {setting.allowed()}, got {value!r}"
    if setting.key == "time.zone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{where} is not a known time zone; allowed: e.g. Asia/Jakarta, Asia/Makassar"
    if setting.key in {"web.listen", "mqtt.broker"} and value:
        port = int(value.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            return (
                f"{setting.key}: expected {setting.allowed()}, with a port from 1 to 65535, "
                f"got {value!r}"
            )
    return None


def describe() -> str:
    """Every setting with its default, allowed values, meaning and variable, for `posko
    settings`: valid TOML, so that a line can be pasted into a configuration file."""
    lines = ["# Every setting with its default; `posko settings --toml` writes a whole file."]
    section = ""
    for s in SETTINGS:
        head, name = s.key.split(".", 1)
        if head != section:
            section = head
            lines += ["", f"[{section}]"]
        lines.append(f"{name} = {_toml_value(s.default)}    # {s.help}; {s.allowed()}; env {s.env}")
    return "\n".join(lines)


def example_toml() -> str:
    """A complete configuration file with every default, for docs/config.example.toml."""
    lines = [
        "# Posko configuration: copy to /etc/posko/config.toml and edit.",
        "# Every setting is listed with its default; `posko settings` explains each one.",
        "# Unknown keys are errors, so a typo never goes unnoticed.",
    ]
    section = ""
    for s in SETTINGS:
        head, name = s.key.split(".", 1)
        if head != section:
            section = head
            lines += ["", f"[{section}]"]
        lines += [f"# {s.help}; {s.allowed()}", f"{name} = {_toml_value(s.default)}"]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
