"""The day report, `/api/summary`, the CSV export and the history pages, with bad input."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest

from edge.clock import VirtualClock
from edge.post import Post
from edge.tally import summarize
from tests.support.web_support import Screen
from web.chart import hourly_chart, nice_top

TODAY = "2026-11-27"  # the virtual clock starts at 08:00 in Jakarta on this day


@pytest.fixture
def screen(open_post: Callable[..., Post], clock: VirtualClock) -> Screen:
    screen = Screen(open_post([36.6, 38.2, 36.8, "i2c_error", 38.0, 37.6]))
    for button in (
        "masuk_warga",
        "masuk_pendatang",
        "masuk_warga",
        "masuk_warga",
        "masuk_pendatang",
        "keluar_warga",
        "keluar_pendatang",
    ):
        screen.press(button)
    clock.advance(3600)
    screen.post_form("/recheck/2", as_json=True)  # 37.6 at the second reading: refused
    screen.press("keluar_warga")
    screen.press("batal")  # voids that exit
    return screen


def test_web_summary_json_has_the_figures_of_the_day(screen: Screen) -> None:
    response = screen.get(f"/api/summary?date={TODAY}")
    assert response.status_code == 200
    data = response.json
    assert data is not None
    expected = summarize(screen.post.store.on_day(TODAY))
    assert {k: data[k] for k in ("in", "out", "visitors_inside", "by_screening")} == {
        k: expected[k] for k in ("in", "out", "visitors_inside", "by_screening")
    }
    assert data["date"] == TODAY and data["in"] == 5 and data["out"] == 2
    assert data["fevers"] == 2 and data["refused"] == 1 and data["referrals"] == 1
    assert data["sensor_faults"] == 1 and data["voided"] == 1
    assert sum(data["entries_per_hour"]) == 5 and data["entries_per_hour"][8] == 5


def test_web_summary_defaults_to_today_and_knows_empty_days(screen: Screen) -> None:
    today = screen.get("/api/summary").json
    assert today is not None and today["date"] == TODAY and today["in"] == 5
    empty = screen.get("/api/summary?date=2001-02-03").json
    assert empty is not None and empty["in"] == 0 and empty["by_screening"]["normal"] == 0


@pytest.mark.parametrize(
    "date",
    [
        "2026-13-01",
        "2026-02-30",
        "yesterday",
        "27-11-2026",
        "20261127",
        "2026-11-27T00:00",
        "9" * 500,
    ],
)
@pytest.mark.parametrize("path", ["/api/summary", "/report", "/history", "/export.csv"])
def test_web_malformed_dates_are_400_without_a_trace(screen: Screen, path: str, date: str) -> None:
    response = screen.get(path, query_string={"date": date})
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    if path.startswith("/api/"):
        assert response.json == {"error": "400", "status": 400}


def test_web_report_shows_figures_chart_and_referral(screen: Screen) -> None:
    html = screen.text(f"/report?date={TODAY}")
    assert 'id="r-in-resident">3<' in html and 'id="r-refusals">1<' in html
    assert "<svg" in html and 'class="res"' in html  # the server-rendered chart
    assert "#2" in html and "38,2" in html and "37,6" in html  # both readings, decimal comma
    assert '<script src="http' not in html  # nothing from a CDN


def test_web_report_prints_on_a_page(screen: Screen) -> None:
    css = screen.text("/static/posko.css")
    assert "@page { size: A4" in css and "@media print" in css


def test_web_csv_export_of_one_day(screen: Screen) -> None:
    response = screen.get(f"/export.csv?date={TODAY}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["seq"]) for r in rows] == list(range(1, screen.post.store.count + 1))
    assert rows[0]["local_time"].startswith(TODAY)


def test_web_csv_export_of_a_range_and_bad_ranges(screen: Screen) -> None:
    ok = screen.get("/export.csv?from=2026-11-01&to=2026-11-30")
    assert ok.status_code == 200 and ok.get_data(as_text=True).count("\n") == 1 + 10
    empty = screen.get("/export.csv?from=2001-01-01&to=2001-01-02")
    assert empty.get_data(as_text=True).count("\n") == 1  # the header only
    assert screen.get("/export.csv?from=2026-11-30&to=2026-11-01").status_code == 400
    assert screen.get(f"/export.csv?date={TODAY}&from={TODAY}").status_code == 400


def test_web_csv_defuses_spreadsheet_formulas(screen: Screen) -> None:
    screen.post_form("/visitors/2", {"name": '=HYPERLINK("http://x")'})
    text = screen.get(f"/export.csv?date={TODAY}").get_data(as_text=True)
    assert "\n=" not in text and ",=" not in text


def test_web_history_filters_and_pages(screen: Screen) -> None:
    html = screen.text(f"/history?date={TODAY}")
    assert html.count('class="ev ') == 10
    resident = screen.text(f"/history?date={TODAY}&who=resident&kind=in")
    assert resident.count('class="ev ') == 3
    refused = screen.text(f"/history?date={TODAY}&screening=refused")
    assert refused.count('class="ev ') == 1


@pytest.mark.parametrize(
    "query",
    [
        "kind=teleport",
        "who=alien",
        "screening=maybe",
        "page=abc",
        "page=0",
        "page=-3",
        "page=1e9",
        "page=²",
    ],
)
def test_web_history_bad_filters_are_400(screen: Screen, query: str) -> None:
    assert screen.get(f"/history?date={TODAY}&{query}").status_code == 400


def test_web_history_huge_page_shows_the_last_page(screen: Screen) -> None:
    for _ in range(30):
        screen.press("keluar_warga")
    response = screen.get(f"/history?date={TODAY}&page=999999999999")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "halaman 2 dari 2" in html and html.count('class="ev ') == 40 - 25


def test_web_history_of_an_empty_day(screen: Screen) -> None:
    assert "Tidak ada catatan" in screen.text("/history?date=1999-12-31")


def test_web_event_detail_and_unknown_events(screen: Screen) -> None:
    html = screen.text("/event/2")
    assert "Masuk Pendatang" in html and "38,2" in html
    assert 'href="/event/8"' in html  # the re-check points back at it
    for seq in ("0", "999", "99999999999999999999"):
        assert screen.get(f"/event/{seq}").status_code == 404
    assert screen.get("/event/-1").status_code == 404


def test_web_english_is_selectable(screen: Screen) -> None:
    response = screen.get("/lang/en?next=/report")
    assert response.status_code == 302 and response.headers["Location"] == "/report"
    assert "Day report" in screen.text("/report")
    assert screen.get("/lang/xx").status_code == 404
    away = screen.get("/lang/id?next=//evil.example/")
    assert away.headers["Location"] == "/"


def test_web_chart_scales_to_round_numbers() -> None:
    assert [nice_top(p) for p in (0, 1, 3, 6, 11, 99, 101)] == [1, 1, 5, 10, 20, 100, 200]
    chart = hourly_chart([(0, 0)] * 8 + [(4, 1)] + [(0, 0)] * 15)
    bar = chart.bars[8]
    assert bar.resident_h > 0 and bar.visitor_h > 0
    assert bar.visitor_y + bar.visitor_h == pytest.approx(bar.resident_y)
    assert all(b.resident_h == 0 for i, b in enumerate(chart.bars) if i != 8)
