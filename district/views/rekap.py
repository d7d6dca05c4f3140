"""The daily rekap (`/rekap?day=&level=`): per post, desa or kecamatan, with a 14-day trend
chart per region drawn on the server; the same as CSV (`/rekap.csv`, formulas defused) and
JSON (`/api/rekap`). The page prints on A4 (district.css).
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from district import rekap
from district.site import Pages, pages
from district.views.emergencies import places
from edge.export import csv_writer, defuse
from web.chart import nice_top

bp = Blueprint("rekap", __name__)


def _query(site: Pages) -> tuple[str, str]:
    """The day and level asked for (400 for anything else)."""
    day = request.args.get("day") or site.today()
    try:
        day = date.fromisoformat(day).isoformat()
    except ValueError:
        abort(400, f"{day[:20]!r} is not a date like 2026-11-27")
    if day < "0001-01-14":  # the trend's first day must exist
        abort(400, "the day is too early")
    level = request.args.get("level") or "desa"
    if level not in rekap.LEVELS:
        abort(400, f"level must be one of {', '.join(rekap.LEVELS)}")
    return day, level


def build(site: Pages, day: str, level: str, *, with_trend: bool = True) -> dict[str, Any]:
    """The rekap of `day` at `level`: rows, total, and the 14-day trend per region."""
    with site.open() as db:
        figures = rekap.daily_figures(db, day, day, site.zone)[day]
        where = places(site, db.posts())
        series = rekap.trend(db, *rekap.trend_days(day), where, level) if with_trend else {}
    rows = rekap.rows(figures, where, level)
    report: dict[str, Any] = {
        "day": day,
        "level": level,
        "rows": rows,
        "total": rekap.total(rows),
        "posts": sum(r.posts for r in rows),
    }
    if with_trend:
        report["trend"] = series
    return report


@bp.get("/rekap")
def page() -> str:
    site = pages()
    day, level = _query(site)
    report = build(site, day, level)
    names = {r.code: r.name for r in report["rows"]}
    charts = [
        (code, names.get(code, ""), rekap.trend_chart(series, nice_top))
        for code, series in report["trend"].items()
        if code == "*" or code in names
    ]
    return render_template("rekap.html", report=report, charts=charts, figures=rekap.FIGURES)


@bp.get("/api/rekap")
def api() -> dict[str, Any]:
    site = pages()
    day, level = _query(site)
    report = build(site, day, level)
    return {
        "day": day,
        "level": level,
        "zone": site.zone.key,
        "rows": [_row(r) for r in report["rows"]],
        "total": report["total"],
        "trend": {
            code: [{"day": d, **figures} for d, figures in series]
            for code, series in report["trend"].items()
        },
    }


def _row(row: rekap.Row) -> dict[str, Any]:
    return {
        "code": row.code,
        "name": row.name,
        "parent": row.parent,
        "posts": row.posts,
        **row.figures,
    }


CSV_COLUMNS = ("day", "level", "code", "name", "parent", "posts", *rekap.FIGURES)


@bp.get("/rekap.csv")
def csv() -> Response:
    site = pages()
    day, level = _query(site)
    report = build(site, day, level, with_trend=False)
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        cells = [day, level, row.code, row.name, row.parent, row.posts]
        writer.writerow([defuse(c) for c in cells] + [row.figures[f] for f in rekap.FIGURES])
    writer.writerow([day, level, "", "total", "", report["posts"], *report["total"].values()])
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="posko-rekap-{day}-{level}.csv"'},
    )
