"""Debian's headless Chromium through playwright, as every browser test opens it: the module
is skipped (with the reason) where either is missing, and nothing reaches the network."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require() -> Any:
    """playwright's sync API; skips the calling test module if Chromium or it is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian's chromium is not installed (`make test` installs it)", allow_module_level=True
        )
    return pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )


@contextmanager
def page(profile: Path, width: int, height: int, **options: Any) -> Iterator[Any]:
    """One page of a fresh browser profile at width × height (`options`: locale, ...)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": width, "height": height},
            **options,
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@contextmanager
def browser() -> Iterator[Any]:
    """A browser for tests that open several contexts (sizes, languages) in turn."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()
