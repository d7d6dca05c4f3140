"""The day report (*laporan harian*), its figures as JSON, and the CSV download.

The report prints on one A4 page; `/api/summary?date=` gives the same figures as JSON;
`/export.csv?date=` (or `?from=&to=`) streams one day's or a range's events, NIK masked.
The CSV keeps the decimal point whatever the page's language: spreadsheets read it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from edge.events import Event
from edge.export import CSV_COLUMNS, csv_row, csv_writer, with_nik_masked
from edge.tally import Referral
from web.chart import hourly_chart
from web.present import local
from web.services import posko
from web.views import day_arg, shift_day, today

bp = Blueprint("report", __name__)


@bp.get("/report")
def index() -> str:
    day = day_arg()
    services = posko()
    figures = services.figures.of_day(day)
    zone = services.post.store.zone
    return render_template(
        "report.html",
        day=day,
        figures=figures,
        data=figures.as_json(),
        chart=hourly_chart(figures.hourly),
        referrals=[_referral(r, zone) for r in figures.referrals],
        open_referrals=[_referral(r, zone) for r in figures.open_referrals],
        prev_day=shift_day(day, -1),
        next_day=shift_day(day, 1),
        is_today=day == today(),
        threshold=services.config.screening.threshold_c,
    )


@bp.get("/api/summary")
def summary() -> Any:
    day = day_arg()
    services = posko()
    data = {"post": services.config.post.id, **services.figures.of_day(day).as_json()}
    return jsonify(data)


@bp.get("/export.csv")
def export() -> Response:
    single = request.args.get("date")
    if single and ("from" in request.args or "to" in request.args):
        abort(400)
    first = day_arg("date") if single else day_arg("from", today())
    last = first if single else day_arg("to", first)
    if first > last:
        abort(400)
    store = posko().post.store
    name = f"posko-{posko().config.post.id}-{first}" + ("" if first == last else f"-{last}")
    return Response(
        _csv(store.iter_between(first, last), store.zone),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _csv(events: Iterator[Event], zone: Any) -> Iterator[str]:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(csv_row(with_nik_masked(event), zone))  # formulas defused there
        if out.tell() > 16384:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _referral(referral: Referral, zone: Any) -> dict[str, Any]:
    when = local(referral.time, zone)
    follow = referral.follow_up or {}
    return {
        "seq": referral.seq,
        "day": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H:%M"),
        "first": referral.first_c,
        "second": referral.second_c,
        "who": referral.who,
        "outcome": follow.get("referral", ""),
        "contact": follow.get("contact", ""),
    }
