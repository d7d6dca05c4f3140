"""A real browser on the real server: headless Chromium at 800×480 presses an on-screen
button and sees the count and the event appear; a physical press arrives by itself
through server-sent events; Darurat fires only when held. Writes docs/screenshot.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.clock import SystemClock
from edge.config import Config
from edge.events import parse_time
from edge.post import Post
from edge.simulate import simulate
from sensors.simulated import ScriptedThermometer
from tests.support import chromium
from tests.support.web_support import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
WAIT_MS = 2000  # the issue: the count and the event appear within 2 s of a press

playwright = chromium.require()
expect = playwright.expect


class TrustedClock(SystemClock):
    """The real time (moved past the simulated morning), taken as synchronised."""

    offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    def state(self) -> str:
        return "synced"


@pytest.fixture
def served(config: Config, tmp_path: Path) -> Iterator[tuple[Post, str]]:
    cfg = config.replace(post__name="Posko RW 05 Sukamaju")
    simulate(cfg, 260, seed=5)  # a realistic morning at the post, ending now
    clock = TrustedClock()
    with Post(
        cfg,
        mock=True,
        clock=clock,
        use_config_sensors=False,
        thermometer=ScriptedThermometer([36.6, 36.4, 36.8, 36.5]),
    ) as post:
        last = parse_time(post.store.recent(1)[0]["time"])
        clock.offset = max(last - clock.now() + timedelta(seconds=20), timedelta(0))
        server = serve(post, cfg)
        try:
            yield post, server.url
        finally:
            server.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with chromium.page(tmp_path / "chromium-profile", 800, 480, locale="id-ID") as page:
        yield page


def test_web_browser_press_updates_the_live_view(served: tuple[Post, str], page: Any) -> None:
    post, url = served
    page.goto(url)
    residents = page.locator("#c-in-resident")
    before = int(residents.inner_text())
    expect(page.locator("#events .ev").first).to_be_visible()
    size = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    assert size == [800, 480]  # the live view fits without scrolling

    page.locator("button[data-button=masuk_warga]").click()
    expect(residents).to_have_text(str(before + 1), timeout=WAIT_MS)
    newest = post.store.last_seq
    first = page.locator("#events .ev").first
    expect(first).to_have_attribute("data-seq", str(newest), timeout=WAIT_MS)
    expect(first).to_contain_text("Masuk Warga")
    expect(page.locator("#banner")).to_have_attribute("data-kind", "normal")

    page.evaluate("document.getElementById('toast').hidden = true")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    pin = post.mock_pin("keluar_pendatang")  # a physical button: the page is told by SSE
    out = int(page.locator("#c-out-visitor").inner_text())
    pin.drive_low()
    pin.drive_high()
    expect(page.locator("#c-out-visitor")).to_have_text(str(out + 1), timeout=WAIT_MS)


def test_web_browser_darurat_fires_only_when_held(served: tuple[Post, str], page: Any) -> None:
    post, url = served
    page.goto(url)
    expect(page.locator("#events .ev").first).to_be_visible()
    last = post.store.last_seq
    darurat = page.locator("#darurat")
    darurat.click()  # a tap: only the hint
    expect(page.locator("#toast")).to_contain_text("Tahan", timeout=WAIT_MS)
    assert post.store.last_seq == last
    darurat.hover()
    page.mouse.down()
    expect(page.locator("#events .ev").first).to_contain_text("DARURAT", timeout=WAIT_MS)
    page.mouse.up()
    assert post.store.recent(1)[0]["kind"] == "emergency"


def test_web_browser_day_report_prints_on_one_a4_page(served: tuple[Post, str], page: Any) -> None:
    _, url = served
    page.goto(url + "report")
    expect(page.locator("svg.chart")).to_be_visible()
    pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))
    assert pages == 1, pages
