"""A real browser at 800×480 on the real server: after Darurat the emergency covers the
screen, fits it in both languages, ignores a tap on "handled", and goes away only when a
guard holds "handled"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.config import Config
from edge.post import Post
from sensors.simulated import ScriptedThermometer
from tests.support import chromium
from tests.support.web_support import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 4000

playwright = chromium.require()
expect = playwright.expect


@pytest.fixture
def served(config: Config) -> Iterator[tuple[Post, str]]:
    with Post(
        config, mock=True, use_config_sensors=False, thermometer=ScriptedThermometer([36.6])
    ) as post:
        server = serve(post, config)
        try:
            yield post, server.url
        finally:
            server.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with chromium.page(tmp_path / "chromium-profile", 800, 480) as page:
        yield page


def fits(page: Any) -> None:
    """Every line of the alarm lies whole inside the 800×480 screen (the rest of the page's
    layout is tested by the layout tests)."""
    for box in page.locator("#alarm, #alarm > *, #handled .txt").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom, e.scrollWidth <= e.clientWidth]; })"
    ):
        left, top, right, bottom, whole = box
        assert left >= 0 and top >= 0 and right <= 800 and bottom <= 480 and whole, box


def test_browser_alarms_emergency_stays_until_handled_is_held(
    served: tuple[Post, str], page: Any
) -> None:
    post, url = served
    assert post.station.press("darurat").pattern == "emergency"  # the physical button
    seq = post.store.last_seq
    page.goto(url)
    alarm = page.locator("#alarm")
    expect(alarm).to_have_attribute("data-alarm", "emergency")
    expect(alarm).to_contain_text("DARURAT")
    fits(page)
    page.locator(".langs a[hreflang=en]").click()
    expect(alarm).to_contain_text("EMERGENCY")
    fits(page)

    handled = page.locator("#handled")
    handled.click()  # a tap: only the hint, the emergency stays
    expect(page.locator("#toast")).to_contain_text("Hold", timeout=WAIT_MS)
    assert post.store.last_seq == seq
    post.station.press("masuk_warga")  # the post goes on meanwhile
    page.reload()
    expect(alarm).to_be_visible()

    page.locator("#handled").hover()
    page.mouse.down()
    expect(page.locator("#alarm")).to_have_count(0, timeout=WAIT_MS)
    page.mouse.up()
    note = post.store.recent(1)[0]
    assert note["kind"] == "note" and note["ref"] == seq
