"""Visitors (*pendatang*): where each visit stands, details, departures, who leaves, and the
follow-up of a person refused entry.

Details, departures, exits and follow-ups are new events pointing at the entry
(`Kind.VISITOR`, `Kind.DEPARTED`, `Kind.OUT`, `Kind.NOTE`), stored through the station.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for

from edge.events import Kind, Who, mask_nik
from edge.station import Outcome, Record
from edge.tally import REFERRAL_OUTCOMES, Referral, VisitState
from web.forms import VISITOR_FIELDS, referral_follow_up, visitor_details
from web.i18n import translate
from web.present import local, masked_data
from web.services import posko
from web.views import now, submit, wants_json
from web.visitor_book import Visitor

bp = Blueprint("visitors", __name__)


@bp.get("/visitors")
def index() -> str:
    moment = now()
    everyone = sorted(posko().visitors.visitors(moment), key=lambda v: v.seq)
    overdue = [v for v in everyone if v.overdue(moment)]
    shown = {
        "waiting": [v for v in everyone if v.state == VisitState.WAITING],
        "refused": [v for v in everyone if v.state == VisitState.REFUSED],
        "overdue": overdue,
        "present": [v for v in everyone if v.inside and v not in overdue],
    }
    follow = {r.seq: r.follow_up for r in posko().visitors.referrals(moment)}
    return render_template(
        "visitors.html",
        follow=follow,
        **{name: [_shown(v) for v in group] for name, group in shown.items()},
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
    if visitor.state not in (VisitState.INSIDE, VisitState.WAITING):
        return _done(True, "visitor.already_departed")
    outcome = submit(Record(Kind.DEPARTED, {"ref": seq, "who": Who.VISITOR}))
    return _done(outcome is not None and outcome.event is not None, "visitor.departed_saved")


@bp.get("/visitors/leaving")
def leaving() -> str:
    """Keluar Pendatang on the screen: the guard picks who leaves, longest inside first."""
    inside = posko().visitors.inside(now())
    return render_template("visitors_leaving.html", inside=[_shown(v) for v in inside])


@bp.post("/visitors/<int:seq>/out")
def out(seq: int) -> Any:
    """The picked visitor leaves: a Keluar Pendatang that names its visitor."""
    visitor = _find(seq)
    if not visitor.inside:
        return _answer(None, visitor, "visitor.not_inside", 409)
    record = Record(Kind.OUT, {"who": Who.VISITOR, "ref": seq}, button="keluar_pendatang")
    outcome = submit(record)
    stored = outcome is not None and outcome.event is not None
    return _answer(outcome, visitor, "visitor.left" if stored else "pattern.store_unavailable")


@bp.route("/referrals/<int:seq>", methods=["GET", "POST"])
def referral(seq: int) -> Any:
    """The follow-up of a person refused entry: where they went, and a contact."""
    found = next((r for r in posko().visitors.referrals(now()) if r.seq == seq), None)
    if found is None:
        abort(404)
    if request.method == "GET":
        return _referral_form(found, dict(found.follow_up or {}), {})
    data, errors = referral_follow_up(request.form)
    if errors:
        return _referral_form(found, dict(request.form), errors), 400
    fields = {"ref": seq, "who": found.who or None, "data": data}
    outcome = submit(Record(Kind.NOTE, fields))
    ok = outcome is not None and outcome.event is not None
    flash(
        translate("referral.saved" if ok else "pattern.store_unavailable"),
        "stored" if ok else "error",
    )
    return redirect(url_for("report.index"))


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


def _referral_form(found: Referral, values: dict[str, Any], errors: dict[str, str]) -> str:
    when = local(found.time, posko().post.store.zone)
    return render_template(
        "visitors_referral.html",
        referral=found,
        when=when.strftime("%Y-%m-%d %H:%M"),
        outcomes=REFERRAL_OUTCOMES,
        values=values,
        errors=errors,
    )


def _done(ok: bool, key: str) -> Any:
    flash(translate(key if ok else "pattern.store_unavailable"), "stored" if ok else "error")
    return redirect(url_for("visitors.index"))


def _answer(outcome: Outcome | None, visitor: Visitor, key: str, status: int = 0) -> Any:
    """What the screen says after a picked exit: who left, under which number."""
    event = outcome.event if outcome else None
    name = visitor.details.get("name") or translate("who.visitor")
    message = translate(key, seq=visitor.seq, name=name)
    if event is not None:
        message = f"{message} · {translate('event.out.visitor')} #{event['seq']}"
    pattern = "stored" if event is not None else ("denied" if status == 409 else "busy")
    status = status or (200 if event is not None else 503)
    if wants_json():
        seq = event["seq"] if event else None
        return jsonify({"pattern": pattern, "seq": seq, "message": message}), status
    flash(message, pattern)
    return redirect(url_for("live.index"))


def _shown(visitor: Visitor) -> dict[str, Any]:
    zone = posko().post.store.zone
    when = local(visitor.time, zone)
    return {
        "seq": visitor.seq,
        "day": when.strftime("%Y-%m-%d"),
        "time": when.strftime("%H:%M"),
        "details": masked_data(visitor.details),
        "state": str(visitor.state),
        "departed": visitor.departed,
    }
