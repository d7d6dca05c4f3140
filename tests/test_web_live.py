"""The live view and the on-screen buttons, through Flask's test client on a real Post."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from edge.clock import VirtualClock
from edge.events import Kind
from edge.post import Post
from tests.support.guard import Guard
from tests.support.web_support import Screen
from web.live import Hub


@pytest.fixture
def screen(open_post: Callable[..., Post]) -> Screen:
    return Screen(open_post([36.6, 38.0, 36.5, 37.9, 38.1, 36.4]))


def count(html: str, name: str) -> int:
    found = re.search(rf'id="c-{name}">(\d+)<', html)
    assert found, name
    return int(found.group(1))


def test_web_live_view_starts_empty_and_idle(screen: Screen) -> None:
    html = screen.text("/")
    assert count(html, "in-resident") == 0 and count(html, "inside") == 0
    assert 'data-kind="idle"' in html
    assert "Belum ada pemeriksaan hari ini" in html  # Indonesian by default


def test_web_screen_button_goes_through_the_station(screen: Screen) -> None:
    answer = screen.press("masuk_warga")
    assert answer.status_code == 200
    assert answer.json is not None
    assert answer.json["pattern"] == "stored" and answer.json["seq"] == 1
    event = screen.post.store.get(1)
    assert event is not None and event["kind"] == Kind.IN and event["who"] == "resident"
    assert event["temp_c"] == 36.6  # measured by the thermometer, like a physical press
    html = screen.text("/live/panel")
    assert count(html, "in-resident") == 1
    assert 'data-kind="normal"' in html and 'data-seq="1"' in html


def test_web_every_button_does_what_the_physical_one_does(screen: Screen) -> None:
    for button in ("masuk_warga", "masuk_pendatang", "keluar_warga", "keluar_pendatang"):
        assert screen.press(button).status_code == 200
    undo = screen.press("batal")
    assert undo.json is not None and undo.json["pattern"] == "voided"
    kinds = [e["kind"] for e in screen.post.store.recent(10)]
    assert kinds == ["void", "out", "out", "in", "in"]
    html = screen.text("/")
    assert count(html, "out-visitor") == 0  # the voided exit no longer counts
    assert count(html, "in-visitor") == 1
    assert count(html, "inside") == 0  # the visitor (38.0) waits for a re-check: not inside


def test_web_darurat_needs_the_hold_or_the_confirm_step(screen: Screen) -> None:
    bare = screen.press("darurat")
    assert bare.status_code == 400
    assert screen.post.store.count == 0
    assert "Ya, DARURAT" in screen.text("/darurat")
    confirmed = screen.press("darurat", confirm="1")
    assert confirmed.json is not None and confirmed.json["pattern"] == "emergency"
    assert screen.post.store.get(1)["kind"] == Kind.EMERGENCY  # type: ignore[index]


def test_web_unknown_button_is_refused(screen: Screen) -> None:
    assert screen.press("tombol_rahasia").status_code == 400
    assert screen.post.store.count == 0


def test_web_press_without_javascript_redirects_with_a_message(screen: Screen) -> None:
    response = screen.post_form("/press", {"button": "keluar_warga"})
    assert response.status_code == 302
    assert "Tersimpan" in screen.text("/")


def test_web_fever_shows_amber_banner_with_countdown_then_recheck(
    screen: Screen, clock: VirtualClock
) -> None:
    screen.press("masuk_warga")  # 36.6
    screen.press("masuk_pendatang")  # 38.0: wait and measure again
    html = screen.text("/live/panel")
    assert 'data-kind="recheck"' in html and 'data-left="300"' in html
    early = screen.post_form("/recheck/2", as_json=True)
    assert early.status_code == 409
    clock.advance(301)
    done = screen.post_form("/recheck/2", as_json=True)
    assert done.status_code == 200 and done.json is not None
    assert done.json["pattern"] == "stored"  # 36.5 on the second reading
    second = screen.post.store.get(3)
    assert second is not None and second["kind"] == Kind.RECHECK and second["ref"] == 2
    assert 'data-kind="normal"' in screen.text("/live/panel")


def test_web_second_fever_shows_red_refusal(screen: Screen, clock: VirtualClock) -> None:
    screen.press("masuk_warga")
    screen.press("masuk_warga")  # 38.0
    screen.press("masuk_warga")  # 36.5
    screen.press("masuk_warga")  # 37.9: a second person waits too
    clock.advance(400)
    assert screen.post_form("/recheck/4", as_json=True).status_code == 409  # #2 is first
    refused = screen.post_form("/recheck/2", as_json=True)
    assert refused.json is not None and refused.json["pattern"] == "refused"  # 38.1
    html = screen.text("/live/panel")
    assert 'data-kind="refused"' in html and "rujuk ke puskesmas" in html


def test_web_recheck_of_nobody_waiting_is_404(screen: Screen) -> None:
    assert screen.post_form("/recheck/99", as_json=True).status_code == 404
    assert screen.post.store.count == 0


def test_web_physical_press_appears_on_the_panel(
    open_post: Callable[..., Post], clock: VirtualClock
) -> None:
    guard = Guard(open_post([36.6]), clock)
    screen = Screen(guard.post)
    guard.press("keluar_pendatang")
    assert count(screen.text("/live/panel"), "out-visitor") == 1


def test_web_sensor_fault_is_grey(open_post: Callable[..., Post]) -> None:
    screen = Screen(open_post(["i2c_error"]))
    screen.press("masuk_warga")
    assert 'data-kind="fault"' in screen.text("/live/panel")


def test_web_status_shows_sync_store_and_untrusted_clock(
    screen: Screen, clock: VirtualClock
) -> None:
    screen.press("masuk_warga")
    html = screen.text("/live/panel")
    assert "Pengiriman belum diatur · 1 belum terkirim" in html
    assert "Penyimpanan normal" in html and "Jam belum tepercaya" not in html
    clock._state = "unsynced"
    assert "Jam belum tepercaya" in screen.text("/live/panel")
    screen.services.sync = lambda: {"configured": True, "connected": True}
    assert "Terhubung ke kabupaten" in screen.text("/live/panel")


def test_web_live_view_lists_at_most_20_events(screen: Screen) -> None:
    for _ in range(23):
        screen.press("keluar_warga")
    html = screen.text("/")
    assert html.count('class="ev ev-out') == 20
    assert 'data-last="23"' in html


def test_web_healthz_reports_alive_then_the_reason(screen: Screen) -> None:
    ok = screen.get("/healthz")
    assert ok.status_code == 200 and ok.json is not None and ok.json["ok"] is True
    screen.post.station.close()
    down = screen.get("/healthz")
    assert down.status_code == 503
    assert down.json is not None and "the station thread has stopped" in down.json["reasons"]
    assert screen.press("masuk_warga").status_code == 503  # never queued to a dead station


def test_web_stream_is_bounded_and_ticks_on_events() -> None:
    hub = Hub(lambda: 2, keepalive_s=0.05)
    first, second = hub.open(), hub.open()
    assert first is not None and second is not None
    assert hub.open() is None  # the bound
    assert "event: hello" in next(first)
    hub.publish({"seq": 7})
    hub.publish({"seq": 8})
    assert next(first) == "event: update\ndata: 8\n\n"  # ticks coalesce to the newest
    assert next(first) == ": keep-alive\n\n"
    first.close()
    assert hub.open_streams == 1
    hub.close()
    next(second)  # hello
    assert list(second) == ["event: update\ndata: 8\n\n"]  # what was due, then the end
    assert hub.open() is None


def test_web_stream_endpoint_refuses_past_the_bound(screen: Screen) -> None:
    limit = screen.post.config["web.sse_max_streams"]
    held = [screen.services.hub.open() for _ in range(limit)]
    response = screen.get("/live/stream")
    assert response.status_code == 503
    assert json.loads(response.data)["error"] == "busy"
    for stream in held:
        stream.close()
    response = screen.get("/live/stream", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert b"event: hello" in next(response.response)  # type: ignore[call-overload]
    response.close()
