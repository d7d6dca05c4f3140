"""The live view: today's counts, the latest screening, the last 20 events, the buttons.

`/live/panel` renders the changing part alone; the page fetches it when the stream
(`/live/stream`) says an event was stored, or every few seconds when it has no stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from edge.events import Event, Screening
from edge.station import Outcome
from edge.tally import PendingRecheck, voided
from sensors.buttons import BUTTONS, Press
from web.i18n import translate
from web.present import label_key, local, row
from web.services import posko
from web.views import now, submit, today, wants_json

bp = Blueprint("live", __name__)

RECENT = 20
ENTRY_BUTTON = {"resident": "masuk_warga", "visitor": "masuk_pendatang"}
BANNER = {
    Screening.NORMAL: "normal",
    Screening.RECHECK: "recheck",
    Screening.REFUSED: "refused",
    Screening.FAULT: "fault",
}


@bp.get("/")
def index() -> str:
    return render_template("live.html", **live_context())


@bp.get("/live/panel")
def panel() -> str:
    return render_template("_live_panel.html", **live_context())


@bp.get("/live/stream")
def stream() -> Any:
    lines = posko().hub.open(gone=request.environ.get("waitress.client_disconnected"))
    if lines is None:  # too many screens: this one polls instead
        return jsonify({"error": "busy", "status": 503}), 503
    return Response(
        lines,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@bp.post("/press")
def press() -> Any:
    button = request.form.get("button", "")
    if button not in BUTTONS:
        abort(400)
    if button == "darurat" and request.form.get("confirm") != "1":
        abort(400)  # the screen's Darurat needs a hold or the confirm page
    return _answer(submit(Press(button)))


@bp.get("/darurat")
def darurat() -> str:
    return render_template("darurat.html")


@bp.post("/recheck/<int:seq>")
def recheck(seq: int) -> Any:
    """The re-check of one waiting person: the station's held entry button of their group."""
    station = posko().post.station
    person = next((p for p in station.pending if p.seq == seq), None)
    if person is None:
        abort(404)
    first = next(p for p in station.pending if p.who == person.who)
    if first.seq != seq or person.due(_wait()) > now():
        return _refuse("recheck.not_yet")
    return _answer(submit(Press(ENTRY_BUTTON.get(person.who, "masuk_warga"), held=True)))


def _wait() -> float:
    return float(posko().config.screening.recheck_wait_s)


def _answer(outcome: Outcome | None) -> Any:
    pattern = outcome.pattern if outcome else "busy"
    event = outcome.event if outcome else None
    seq = event["seq"] if event else None
    key = f"pattern.{pattern}"
    if pattern == "denied" and outcome is not None:
        key = {"batal": "pattern.denied_batal"}.get(outcome.press.button, "pattern.denied_recheck")
    message = translate(key)
    if event is not None:
        message = f"{message} — {translate(label_key(event))} #{seq}"
    status = 200 if seq is not None or pattern == "denied" else 503
    if wants_json():
        return jsonify({"pattern": pattern, "seq": seq, "message": message}), status
    flash(message, pattern)
    return redirect(url_for("live.index"))


def _refuse(key: str) -> Any:
    message = translate(key)
    if wants_json():
        return jsonify({"pattern": "denied", "seq": None, "message": message}), 409
    flash(message, "denied")
    return redirect(url_for("live.index"))


def live_context() -> dict[str, Any]:
    services = posko()
    post, store = services.post, services.post.store
    moment = now()
    figures = services.figures.of_day(today())
    recent = store.recent(RECENT)
    cancelled = voided(recent)
    pending = _pending(post.station.pending, moment)
    sync = services.sync_state()
    return {
        "figures": figures,
        "rows": [row(e, store.zone, cancelled) for e in recent],
        "pending": pending,
        "banner": _banner(figures.latest, pending, store.zone),
        "sync": sync,
        "sync_last": _when(sync.get("last_sync"), store.zone),
        "store_ok": store.health()["ok"],
        "clock_trusted": post.clock.state() == "synced",
        "clock": local(moment, store.zone).strftime("%H:%M"),
        "hold_s": post.config.buttons.emergency_hold_s,
    }


def _pending(waiting: list[PendingRecheck], moment: datetime) -> list[dict[str, Any]]:
    wait, firsts = _wait(), set()
    out = []
    for person in waiting:
        left = max(int((person.due(wait) - moment).total_seconds() + 0.999), 0)
        out.append(
            {
                "seq": person.seq,
                "who": person.who,
                "left": left,
                "temp": "" if person.first_c is None else f"{person.first_c:.1f}",
                "turn": person.who not in firsts,
            }
        )
        firsts.add(person.who)
    return out


def _banner(latest: Event | None, pending: list[dict[str, Any]], zone: Any) -> dict[str, Any]:
    if latest is None:
        return {"kind": "idle"}
    temp = latest.get("temp_c")
    waiting = next((p for p in pending if p["seq"] == latest["seq"]), None)
    return {
        "kind": BANNER.get(Screening(latest["screening"]), "fault"),
        "seq": latest["seq"],
        "label": label_key(latest),
        "time": local(latest["time"], zone).strftime("%H:%M:%S"),
        "temp": "" if temp is None else f"{temp:.1f}",
        "left": waiting["left"] if waiting else None,
    }


def _when(text: Any, zone: Any) -> str:
    """A UTC time text as the post's local "DD/MM HH:MM" (empty when missing or garbled)."""
    if not isinstance(text, str) or not text:
        return ""
    try:
        return local(text, zone).strftime("%d/%m %H:%M")
    except ValueError:
        return ""
