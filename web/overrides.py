"""Settings changed on the guard's page, kept in `DATA/settings.toml` over the config file.

`apply_overrides(config)` returns the configuration with the page's changes on top; `posko
run` calls it so that a change made on the page survives a restart. Only `PAGE_KEYS` are
stored there, each validated exactly like the configuration file (`edge.config`).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.config import Config
from sensors.errors import ConfigError

log = logging.getLogger(__name__)

FILE = "settings.toml"
# The settings an admin may change on the page (the list), in the form's order.
PAGE_KEYS = (
    "post.name",
    "screening.threshold_c",
    "screening.recheck_wait_s",
    "thermometer.offset_c",
    "camera.driver",
    "web.language",
    "web.lan_access",
)
HEADER = "# Written by the guard's page (Pengaturan); applied over the configuration file.\n"


def overrides_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / FILE


def load_overrides(data_dir: str | Path) -> dict[str, Any]:
    """The stored page settings as {"section.name": value}; empty when there are none."""
    path = overrides_path(data_dir)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        log.error("%s is unreadable, page settings ignored: %s", path, e)
        return {}
    found: dict[str, Any] = {}
    for section, table in data.items():
        if isinstance(table, dict):
            found.update({f"{section}.{name}": value for name, value in table.items()})
    return found


def apply_overrides(config: Config) -> Config:
    """`config` with the page's stored settings on top; a bad entry is logged and skipped."""
    result = config
    for key, value in load_overrides(config.post.data_dir).items():
        if key not in PAGE_KEYS:
            log.error("%s: %s cannot be set from the page; ignored", FILE, key)
            continue
        try:
            result = result.replace(**{key.replace(".", "__"): value})
        except ConfigError as e:
            log.error("%s: ignored: %s", FILE, "; ".join(e.problems))
    return result


def save_overrides(data_dir: str | Path, values: Mapping[str, Any]) -> None:
    """Store the page settings (replacing the file atomically)."""
    unknown = set(values) - set(PAGE_KEYS)
    if unknown:
        raise ValueError(f"not page settings: {sorted(unknown)}")
    write_private(overrides_path(data_dir), dumps(values).encode())


def dumps(values: Mapping[str, Any]) -> str:
    """TOML text for flat "section.name" values (str, int, float, bool)."""
    sections: dict[str, list[str]] = {}
    for key in sorted(values):
        section, name = key.split(".", 1)
        sections.setdefault(section, []).append(f"{name} = {toml_value(values[key])}")
    body = "\n".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())
    return HEADER + body


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    raise TypeError(f"cannot write {type(value).__name__} as a setting")


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace a small file atomically, readable only by the posko user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
