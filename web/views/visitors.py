"""Visitors (*pendatang*): details for an entry, who is overdue, marking a departure.

Details and departures are new events pointing at the entry (`Kind.VISITOR`,
`Kind.DEPARTED`), stored through the station like every press.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from edge.events import Kind, Who, mask_nik
from edge.station import Record
from web.forms import VISITOR_FIELDS, visitor_details
from web.i18n import translate
from web.present import local, masked_data
from web.services import posko
from web.views import now, submit
from web.visitor_book import Visitor

bp = Blueprint("visitors", __name__)


@bp.get("/visitors")
def index() -> str:
    moment = now()
    everyone = posko().visitors.visitors(moment)
    overdue = sorted((v for v in everyone if v.overdue(moment)), key=lambda v: v.seq)
    present = [v for v in everyone if not v.departed and not v.overdue(moment)]
    return render_template(
        "visitors.html", overdue=[_shown(v) for v in overdue], present=[_shown(v) for v in present]
    )


@bp.route("/visitors/<int:seq>", methods=["GET", "POST"])
def details(seq: int) -> Any:
    visitor = _find(seq)
    previous = visitor.details
    if request.method == "GET":
        return _form(visitor, dict(previous), {})
    data, errors = visitor_details(request.form, previous)
    if errors:
        shown = {k: request.form.get(k, "") for k in VISITOR_FIELDS if k != "nik"}
        return _form(visitor, shown, errors), 400
    outcome = submit(Record(Kind.VISITOR, {"ref": seq, "who": Who.VISITOR, "data": data}))
    return _done(outcome is not None and outcome.event is not None, "visitor.saved")


@bp.post("/visitors/<int:seq>/departed")
def departed(seq: int) -> Any:
    visitor = _find(seq)
    if visitor.departed:
        return _done(True, "visitor.already_departed")
    outcome = submit(Record(Kind.DEPARTED, {"ref": seq, "who": Who.VISITOR}))
    return _done(outcome is not None and outcome.event is not None, "visitor.departed_saved")


def _find(seq: int) -> Visitor:
    found = next((v for v in posko().visitors.visitors(now()) if v.seq == seq), None)
    if found is None:
        abort(404)
    return found


def _form(visitor: Visitor, values: dict[str, Any], errors: dict[str, str]) -> str:
    values.pop("nik", None)  # a NIK is never sent back to the browser
    return render_template(
        "visitor_form.html",
        visitor=_shown(visitor),
        values=values,
        errors=errors,
        nik_hint=mask_nik(visitor.details.get("nik")),
    )


def _done(ok: bool, key: str) -> Any:
    flash(translate(key if ok else "pattern.store_unavailable"), "stored" if ok else "error")
    return redirect(url_for("visitors.index"))


def _shown(visitor: Visitor) -> dict[str, Any]:
    zone = posko().post.store.zone
    when = local(visitor.time, zone)
    return {
        "seq": visitor.seq,
        "day": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H:%M"),
        "details": masked_data(visitor.details),
        "departed": visitor.departed,
    }
