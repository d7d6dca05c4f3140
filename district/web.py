"""The district page (Flask): every post online or not, backlog, today's figures, gaps,
rejected payloads, the district's retention and privacy log, and a CSV export across
posts for a range of days (NIKs masked: only `posko district export --show-nik` shows them).

`create_app(db)` is the application factory (`db` as given to `--db`); the storage is
opened read-only per request, so the page never competes with the receiver's writes. Its
answers carry the guard's page's strict headers (`web.security.strict_headers`).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, abort, current_app, render_template, request

from district.backends import open_storage
from district.report import DEFAULT_ZONE, day_bounds, overview
from district.retention import Retention
from district.storage import Storage
from edge.export import CSV_COLUMNS, csv_row, csv_writer, with_nik_masked
from web.security import strict_headers

log = logging.getLogger(__name__)

bp = Blueprint("district", __name__)


class Pages:
    """What the blueprint needs, kept in `app.extensions["posko_district"]`."""

    def __init__(self, db: str | Path, zone: str, keep: Retention) -> None:
        self.db = str(db)
        self.zone = ZoneInfo(zone)
        self.keep = keep

    def open(self) -> Storage:
        return open_storage(self.db, read_only=True)

    def today(self) -> str:
        return datetime.now(self.zone).date().isoformat()


def create_app(db: str | Path, *, zone: str = DEFAULT_ZONE, keep: Retention | None = None) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.extensions["posko_district"] = Pages(db, zone, keep or Retention())
    app.register_blueprint(bp)
    app.after_request(strict_headers)
    return app


def _pages() -> Pages:
    pages: Pages = current_app.extensions["posko_district"]
    return pages


@bp.get("/")
def index() -> str:
    pages = _pages()
    with pages.open() as db:
        report = overview(db, pages.today(), pages.zone)
        rejected = db.quarantined()[-20:]
        privacy = db.privacy_log(10)
    return render_template(
        "district.html",
        report=report,
        rejected=rejected,
        zone=pages.zone.key,
        keep=pages.keep,
        privacy=privacy,
    )


@bp.get("/api/posts")
def api_posts() -> dict[str, Any]:
    pages = _pages()
    with pages.open() as db:
        return overview(db, pages.today(), pages.zone)


@bp.get("/export.csv")
def export_csv() -> Response:
    pages = _pages()
    first = _day(request.args.get("from") or pages.today())
    last = _day(request.args.get("to") or first)
    if first > last:
        abort(400, "the first day is after the last day")
    start, end = day_bounds(first, last, pages.zone)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv_writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with pages.open() as db:
            for event in db.events(start, end):
                # Masked NIKs, formulas defused (csv_row).
                writer.writerow(csv_row(with_nik_masked(event), pages.zone))
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


class PageServer:
    """The page served by waitress in a thread; close() stops it (idempotent)."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        from waitress.server import create_server

        self.server = create_server(app, host=host, port=port, threads=4)
        self.url = f"http://{host}:{self.server.effective_port}/"
        self._thread = threading.Thread(target=self.server.run, name="district-web", daemon=True)
        self._closed = False

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.server.close()
            self._thread.join(5)
