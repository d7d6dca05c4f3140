"""The guard's screen at exactly 800×480, in Indonesian and English, in the states that
matter: nothing wider than the screen, no text cut, no rows or buttons on top of each
other. A real post and server, headless Chromium; writes docs/screenshots/guard-*.png."""

from __future__ import annotations

import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.clock import SystemClock
from edge.config import Config
from edge.post import Post
from sensors.buttons import Press
from sensors.simulated import ScriptedThermometer
from tests.support import chromium
from tests.support.web_support import serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WAIT_MS = 3000
LONG_NAME = "Posko RW 03 Sukamaju Kidul"  # the names guards give their posts are long

playwright = chromium.require()

# What a guard must be able to read, checked in the browser: returns the problems found.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > 800) problems.push("page is " + root.scrollWidth + " px wide");
  if (root.scrollHeight > 480) problems.push("page is " + root.scrollHeight + " px high");
  const shown = (el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return s.display !== "none" && s.visibility !== "hidden" && r.width > 0 && r.height > 0
      && !el.closest("[hidden]");
  };
  const name = (el) => el.tagName.toLowerCase() + "." + [...el.classList].join(".")
    + " '" + el.textContent.trim().slice(0, 30) + "'";
  // Text cut: an element that hides its overflow and holds more than it shows.
  for (const el of document.querySelectorAll("body *")) {
    if (!shown(el) || !el.textContent.trim() || el.matches(".events, .pending, .fill")) continue;
    const s = getComputedStyle(el);
    const cuts = (o) => o === "hidden" || o === "clip";  // a scrolling list cuts nothing
    const hides = cuts(s.overflowX) || cuts(s.overflowY) || s.textOverflow === "ellipsis";
    if (!hides) continue;
    if (el.scrollWidth > el.clientWidth + 1) problems.push("cut across: " + name(el));
    if (el.scrollHeight > el.clientHeight + 1) problems.push("cut below: " + name(el));
  }
  // A row is shown whole or not at all; rows, buttons, tiles and chips never overlap.
  const list = document.querySelector("#events");
  const box = list && list.getBoundingClientRect();
  const rows = [...document.querySelectorAll("#events .ev")].filter(shown).filter((el) => {
    const r = el.getBoundingClientRect();
    const inside = r.left >= box.left - 1 && r.right <= box.right + 1
      && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    const outside = r.left >= box.right - 1 || r.right <= box.left + 1
      || r.top >= box.bottom - 1 || r.bottom <= box.top + 1;
    if (!inside && !outside) problems.push("row cut by the list: " + name(el));
    return inside;
  });
  const groups = [rows, ".buttons .btn", ".tile", ".status > *", ".pending > li", ".top > *",
    ".alarm > *", ".pick .btn"];
  for (const group of groups) {
    const found = typeof group === "string" ? [...document.querySelectorAll(group)] : group;
    const items = found.filter(shown);
    for (let i = 0; i < items.length; i++) {
      const a = items[i].getBoundingClientRect();
      const off = a.right > 800.5 || a.bottom > 480.5 || a.left < -0.5 || a.top < -0.5;
      if (off && !items[i].closest(".picker")) problems.push("off screen: " + name(items[i]));
      for (let j = i + 1; j < items.length; j++) {
        const b = items[j].getBoundingClientRect();
        const overlap = Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
          && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
        if (overlap) problems.push("overlap: " + name(items[i]) + " / " + name(items[j]));
      }
    }
  }
  return problems;
}"""


class TrustedClock(SystemClock):
    """The real time, moved by the test (a re-check is due 5 minutes later), synchronised."""

    offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    def state(self) -> str:
        return "synced"


@contextmanager
def full_disk(post: Post) -> Iterator[None]:
    """The journal cannot grow (as a full or failing SD card): every write gets EFBIG. A
    read-only journal does not fail for root, which the tests may run as."""
    segment = max((post.store.data_dir / "events").glob("*.jsonl"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (segment.stat().st_size + 10, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)


MORNING = ["masuk_warga", "masuk_pendatang", "keluar_warga", "masuk_warga"] * 5


def _morning(post: Post) -> None:
    """Twenty presses of a morning, visitors and residents, in and out."""
    for button in MORNING:
        post.station.press(button)


def _normal(post: Post, clock: TrustedClock) -> Any:
    post.station.press("masuk_pendatang")
    return None


def _recheck(post: Post, clock: TrustedClock) -> Any:
    post.station.press("masuk_pendatang")  # 38.0
    post.station.press("masuk_warga")  # 38.2: two people wait
    return None


def _refused(post: Post, clock: TrustedClock) -> Any:
    post.station.press("masuk_pendatang")  # 38.0
    clock.offset += timedelta(seconds=301)
    post.station.submit(Press("masuk_pendatang", held=True)).result(5)  # 38.2 again: refused
    return None


def _emergency(post: Post, clock: TrustedClock) -> Any:
    post.station.press("darurat")
    return None


def _fault(post: Post, clock: TrustedClock) -> Any:
    post.station.press("masuk_warga")  # the thermometer answers with an I2C error
    return None


def _storage(post: Post, clock: TrustedClock) -> Any:
    disk = full_disk(post)
    disk.__enter__()
    post.station.press("keluar_warga")
    return disk


STATES: dict[str, tuple[list[Any], Callable[[Post, TrustedClock], Any], str]] = {
    # state: (thermometer script after the morning, what happens, the screen's mark)
    "normal": ([36.6], _normal, '#banner[data-kind="normal"]'),
    "recheck": ([38.0, 38.2], _recheck, ".pending .wait >> nth=1"),
    "refused": ([38.0, 38.2], _refused, '#banner[data-kind="refused"]'),
    "emergency": ([36.6], _emergency, '[data-alarm="emergency"]'),
    "storage": ([36.6], _storage, '[data-alarm="store"]'),
    "fault": (["i2c_error"], _fault, '#banner[data-kind="fault"]'),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium.browser() as launched:
        yield launched


@pytest.fixture
def screen_in(config: Config, tmp_path: Path, browser: Any) -> Iterator[Callable[..., Any]]:
    """Opens the live view of a fresh post in `state`, in `lang`; yields (page, cleanup)."""
    opened: list[Any] = []

    def open_state(state: str, lang: str) -> tuple[Any, Any]:
        script, happen, _mark = STATES[state]
        cfg = config.replace(post__name=LONG_NAME, web__language=lang)
        clock = TrustedClock()
        entries = sum(1 for b in MORNING if b.startswith("masuk"))
        thermometer = ScriptedThermometer([36.6] * entries + script)
        post = Post(cfg, mock=True, clock=clock, use_config_sensors=False, thermometer=thermometer)
        opened.append(post)
        _morning(post)
        server = serve(post, cfg)
        opened.append(server)
        after = happen(post, clock) or nullcontext()
        context = browser.new_context(viewport={"width": 800, "height": 480}, locale=f"{lang}-ID")
        opened.append(context)
        page = context.new_page()
        page.goto(server.url)
        return page, after

    yield open_state
    for thing in reversed(opened):
        thing.close()


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("state", list(STATES))
def test_screen_layout_fits_800x480(screen_in: Callable[..., Any], state: str, lang: str) -> None:
    page, after = screen_in(state, lang)
    try:
        page.locator(STATES[state][2]).first.wait_for(timeout=WAIT_MS)
        page.evaluate("document.fonts.ready")
        problems = page.evaluate(LAYOUT_PROBLEMS)
        shot = page.screenshot()
    finally:
        after.__exit__(None, None, None)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"guard-{state}-{lang}.png").write_bytes(shot)
    assert problems == [], problems


def test_screen_keluar_pendatang_picker_lets_the_guard_pick(
    screen_in: Callable[..., Any],
) -> None:
    page, _ = screen_in("normal", "id")  # visitors #2, #6, #10, #14, #18 and #21 are inside
    page.locator('#banner[data-kind="normal"]').wait_for(timeout=WAIT_MS)
    page.locator("button[data-button=keluar_pendatang]").click()
    choice = page.locator(".picker button.pick-one[data-seq='21']")
    choice.wait_for(timeout=WAIT_MS)
    first = page.locator(".picker button.pick-one").first
    assert first.get_attribute("data-seq") == "2"  # the one inside longest comes first
    assert page.evaluate(LAYOUT_PROBLEMS) == []
    choice.click()
    toast = page.locator("#toast")
    toast.wait_for(timeout=WAIT_MS)
    assert "#21" in toast.inner_text()
    page.locator(".picker").wait_for(state="detached", timeout=WAIT_MS)
    row = page.locator("#events .ev").first
    playwright.expect(row).to_contain_text("→ #21", timeout=WAIT_MS)
