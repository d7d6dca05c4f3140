"""The live view: today's counts, the latest screening, the last 20 events, the buttons,
and the alarms that take over the screen (an open emergency, a press not stored).

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

from edge.clock import MANUAL
from edge.events import Event, Screening
from edge.station import Outcome
from edge.tally import PendingRecheck, voided
from sensors.buttons import BUTTONS, Press
from web.alarms import StoreFailure, handled_note
from web.i18n import translate
from web.present import label_key, local, row
from web.services import posko
from web.views import now, submit, today, wants_json

bp = Blueprint("live", __name__)

RECENT = 20
HANDLED_HOLD_S = 2.0  # "handled" needs a deliberate hold, never a tap
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


@bp.post("/darurat/handled")
def handled() -> Any:
    """A guard held "handled" on the emergency screen: close the open emergency."""
    if request.form.get("hold") != "1":
        abort(400)  # the hold on the screen, or the confirm page
    seq = request.form.get("seq", type=int)
    emergency = posko().alarms.emergency
    if emergency is None or emergency["seq"] != seq:
        return _refuse("alarm.emergency.stale")  # handled meanwhile, or a newer one came
    return _answer(submit(handled_note(emergency["seq"])))


@bp.get("/darurat/handled")
def handled_confirm() -> Any:
    """The confirm step for a browser without JavaScript (no hold possible)."""
    emergency = posko().alarms.emergency
    if emergency is None:
        return redirect(url_for("live.index"))
    return render_template("darurat.html", handled=emergency["seq"])


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
    clock_state = post.clock.state()
    set_at = getattr(post.clock, "set_at", lambda: None)() if clock_state == MANUAL else None
    return {
        "figures": figures,
        "rows": [row(e, store.zone, cancelled) for e in recent],
        "pending": pending,
        "banner": _banner(figures.latest, pending, store.zone),
        "sync": sync,
        "sync_last": _when(sync.get("last_sync"), store.zone),
        "store_ok": store.health()["ok"],
        "clock_trusted": clock_state in ("synced", MANUAL),
        "clock_set_at": "" if set_at is None else local(set_at, store.zone).strftime("%H:%M"),
        "clock": local(moment, store.zone).strftime("%H:%M"),
        "hold_s": post.config.buttons.emergency_hold_s,
        "handled_hold_s": HANDLED_HOLD_S,
        "emergency": _emergency(services.alarms.emergency, sync, store.zone, moment),
        "failure": _failure(services.alarms.store_failure, store.zone),
        "sensor_down": _sensor_down(post),
    }


def _sensor_down(post: Any) -> bool:
    """The thermometer's last probe failed (edge/probe.py), before anyone is measured."""
    state = getattr(post, "thermometer_state", None)
    return state is not None and state.ok is False


def _emergency(
    event: Event | None, sync: dict[str, Any], zone: Any, moment: datetime
) -> dict[str, Any] | None:
    """The open emergency as the alarm screen shows it, with the district's answer."""
    if event is None:
        return None
    when = local(event["time"], zone)
    if (sync.get("acked") or 0) >= event["seq"]:
        district = "received"
    elif sync.get("off") or not sync.get("configured"):
        district = "off"
    else:
        district = "waiting"
    same_day = when.date() == local(moment, zone).date()
    return {
        "seq": event["seq"],
        "time": when.strftime("%H:%M"),
        "date": "" if same_day else when.strftime("%d/%m/%Y"),
        "district": district,
    }


def _failure(failure: StoreFailure | None, zone: Any) -> dict[str, Any] | None:
    if failure is None:
        return None
    return {
        "presses": failure.presses,
        "since": local(failure.since, zone).strftime("%H:%M"),
        "last": local(failure.last_at, zone).strftime("%H:%M:%S"),
        "button": failure.last_button,
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
