"""posko calibrate (being built)."""

from __future__ import annotations

from typing import Any


def add_command(commands: Any, registry: dict[str, Any]) -> None:
    """Register the `calibrate` subcommand (not yet available)."""
