"""The CSV export across posts for a range of local days (`/export.csv`): NIKs masked
(only `posko district export --show-nik` shows them), formulas defused.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date

from flask import Blueprint, Response, abort, request

from district.report import day_bounds
from district.site import pages
from edge.export import CSV_COLUMNS, csv_row, csv_writer, with_nik_masked

bp = Blueprint("exports", __name__)


@bp.get("/export.csv")
def export_csv() -> Response:
    site = pages()
    first = _day(request.args.get("from") or site.today())
    last = _day(request.args.get("to") or first)
    if first > last:
        abort(400, "the first day is after the last day")
    start, end = day_bounds(first, last, site.zone)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with site.open() as db:
            for event in db.events(start, end):
                writer.writerow(csv_row(with_nik_masked(event), site.zone))
                if buffer.tell() > 64_000:
                    yield _take(buffer)
        yield _take(buffer)

    name = f"posko-district-{first}-{last}.csv"
    return Response(
        rows(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        abort(400, f"{text[:20]!r} is not a date like 2026-11-27")
