"""The district overview in headless Chromium at 390×844 (a phone) and 1280×800 (an office
desktop), in Indonesian and English: the page never scrolls sideways, no text is cut or
spills out of its cell (a wide table scrolls inside its own box). Writes
docs/screenshots/district-<size>-<lang>.png for the README."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from district import uplink
from district.receiver import Receiver
from district.registry import load
from district.sqlite import SQLiteStorage
from district.web import PageServer, create_app
from edge import events as ev
from edge.events import Kind, Screening, Who, utc_text
from sync import codec
from sync.batch import Batch
from sync.messages import status
from tests.support import chromium
from tests.support.district_client import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
EXAMPLE = ROOT / "district" / "regions" / "pesawaran.toml"
SIZES = {"390x844": (390, 844), "1280x800": (1280, 800)}

playwright = chromium.require()

# What an officer must be able to read: the problems found, checked in the browser.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > innerWidth) problems.push("page is " + root.scrollWidth + " px wide");
  const shown = (el) => {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return s.display !== "none" && s.visibility !== "hidden" && r.width > 0 && r.height > 0;
  };
  const name = (el) => el.tagName.toLowerCase() + "." + [...el.classList].join(".")
    + " '" + el.textContent.trim().slice(0, 40) + "'";
  for (const el of document.querySelectorAll("body *")) {
    if (!shown(el) || !el.textContent.trim() || el.matches(".scroll")) continue;
    const s = getComputedStyle(el);
    const cuts = (o) => o === "hidden" || o === "clip";
    if ((cuts(s.overflowX) || s.textOverflow === "ellipsis") && el.scrollWidth > el.clientWidth + 1)
      problems.push("cut: " + name(el));
    // A cell, label or header whose text runs out of its box spills over its neighbour.
    if (el.matches("td, th, label, .top > *, .link, .sub") && el.scrollWidth > el.clientWidth + 1)
      problems.push("spills: " + name(el));
    // Outside a scrolling table box, nothing reaches past the right edge of the window.
    const r = el.getBoundingClientRect();
    if (!el.closest(".scroll") && r.right > innerWidth + 0.5)
      problems.push("off screen: " + name(el));
  }
  return problems;
}"""


def event(post: str, seq: int, minute: int, kind: Kind = Kind.IN, **fields: Any) -> dict[str, Any]:
    day = datetime.now(ZoneInfo("Asia/Jakarta")).replace(hour=0, minute=0, second=0)
    return ev.make(post, seq, day + timedelta(minutes=minute), kind, clock="synced",
                   who=fields.pop("who", Who.RESIDENT), **fields)  # fmt: skip


def fill(db_path: Path) -> None:
    """A district morning: posts in three kecamatan, a backlog, a fever, an emergency, a
    post with a gap, one the registry does not know, and one that never reported."""
    now = datetime.now(UTC)
    ago = lambda minutes: utc_text(now - timedelta(minutes=minutes))  # noqa: E731
    with SQLiteStorage(db_path) as db:
        receiver = Receiver(db)
        posts = {
            "bagelen-rw01": (1234, "18.09.01.2001", "synced", 0),
            "wiyono-rw03": (87, "18.09.01.2007", "unsynced", 312),
            "hanura-dusun2": (412, "18.09.10.2001", "synced", 0),
            "kotaagung-simpang-tiga-rw12": (15, "18.09.03.2002", "manual", 4),
            "posko-baru-tanpa-nama": (3, "18.09.99.9999", "unknown", 0),
        }
        for i, (post, (count, region, clock, pending)) in enumerate(posts.items()):
            batch = [event(post, s, s % 600, who=Who.VISITOR if s % 3 else Who.RESIDENT)
                     for s in range(1, count + 1)]  # fmt: skip
            if post == "bagelen-rw01":
                batch[40] = event(post, 41, 41, temp_c=38.2, screening=Screening.RECHECK)
                batch[41] = event(post, 42, 42, Kind.EMERGENCY)
            chunks = [batch[s : s + 500] for s in range(0, len(batch), 500)]
            if post == "wiyono-rw03":
                chunks = [batch[:50], batch[60:]]  # seqs 51-60 still on their way
            for chunk in chunks:
                receiver.handle(f"posko/v1/{post}/events", codec.encode(Batch.of(post, chunk)))
            fields = {"time": ago(i + 1), "since": ago(12 + 60 * i), "last_seq": count + pending,
                      "pending": pending, "clock": clock, "version": "0.3.1",
                      "disk_free": 3_500_000_000 - i * 700_000_000, "region": region,
                      "oldest": ago(45 * i + 5) if pending else None}  # fmt: skip
            state = "offline" if post == "hanura-dusun2" else "online"
            receiver.handle(f"posko/v1/{post}/status", status(state, **fields))
        uplink.record(db, "district-1", "127.0.0.1:1883", uplink.CONNECTED, at=ago(180))
    make_user(db_path, "budi", "viewer")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path = tmp_path_factory.mktemp("district") / "district.db"
    fill(db_path)
    server = PageServer(create_app(db_path, registry=load(EXAMPLE)), "127.0.0.1", 0).start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium.browser() as launched:
        yield launched


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("size", list(SIZES))
def test_district_overview_fits_phone_and_desktop(
    browser: Any, site: str, size: str, lang: str
) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(site + f"lang/{lang}?next=/login")
        page.fill("input[name=name]", "budi")
        page.fill("input[name=password]", PASSWORD)
        page.click("form.login-form button[type=submit], form.login-form [type=submit]")
        page.wait_for_selector("table.posts", timeout=20_000)  # a loaded CI machine is slow
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("tr.group.kec").count() >= 3  # kecamatan with their totals
        problems = page.evaluate(LAYOUT_PROBLEMS)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"district-{size}-{lang}.png"), full_page=True)
        assert not problems, problems
    finally:
        context.close()
