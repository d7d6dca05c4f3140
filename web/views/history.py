"""History (*riwayat*): one day's events with filters and pages, and one event in detail.

A page reads one day (the store keeps days in separate segments), so it costs the same
with a year of history. A photo is shown only in an event's detail, to a signed-in admin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request, send_file

from edge.events import Event, Kind, Screening, Who
from edge.station import photo_path
from edge.tally import voided
from web.present import label_key, local, masked_data, row
from web.security import is_admin, require_admin
from web.services import posko
from web.views import day_arg, shift_day

bp = Blueprint("history", __name__)

PER_PAGE = 25
FILTERS = {"kind": tuple(Kind), "who": tuple(Who), "screening": tuple(Screening)}


@bp.get("/history")
def index() -> str:
    day = day_arg()
    chosen = {name: request.args.get(name, "") for name in FILTERS}
    for name, value in chosen.items():
        if value and value not in FILTERS[name]:
            abort(400)
    page_text = request.args.get("page", "1")
    if (
        not (page_text.isascii() and page_text.isdigit())
        or len(page_text) > 12
        or int(page_text) < 1
    ):
        abort(400)
    store = posko().post.store
    events = store.on_day(day)
    cancelled = voided(events)
    shown = [e for e in reversed(events) if all(not v or e.get(k) == v for k, v in chosen.items())]
    pages = max((len(shown) + PER_PAGE - 1) // PER_PAGE, 1)
    page = min(int(page_text), pages)  # a page past the end shows the last one
    start = (page - 1) * PER_PAGE
    rows = [row(e, store.zone, cancelled) for e in shown[start : start + PER_PAGE]]
    return render_template(
        "history.html",
        day=day,
        rows=rows,
        chosen=chosen,
        filters=FILTERS,
        page=page,
        pages=pages,
        total=len(shown),
        prev_day=shift_day(day, -1),
        next_day=shift_day(day, 1),
    )


@bp.get("/event/<int:seq>")
def event(seq: int) -> str:
    store = posko().post.store
    found = _event(seq)
    when = local(found["time"], store.zone)
    following = shift_day(when.date().isoformat(), 1) or when.date().isoformat()
    related = [e for e in store.between(when.date().isoformat(), following) if e.get("ref") == seq]
    zone = store.zone
    return render_template(
        "event.html",
        event=found,
        shown=row(found, zone, voided(related)),
        when=when.strftime("%Y-%m-%d %H:%M:%S"),
        data=masked_data(found.get("data")),
        related=[(row(e, zone, set()), label_key(e)) for e in related],
        admin=is_admin(),
    )


@bp.get("/event/<int:seq>/photo.jpg")
@require_admin
def photo(seq: int) -> Any:
    path = photo_path(posko().post.data_dir, seq)
    if not _event(seq).get("photo") or not path.is_file():
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def _event(seq: int) -> Event:
    """The stored event `seq`, or a 404."""
    store = posko().post.store
    found = store.get(seq) if 0 < seq <= store.last_seq else None
    if found is None:
        abort(404)
    return found
