"""A post's history (`/posts/<id>?day=`): its emergencies of the last 14 days with who
acknowledged and handled them and when, the day's refusals with their referrals, the
day's events (no visitor details: those stay in the export, NIKs masked), and the records
the post lost, with why.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Blueprint, abort, render_template, request

from district import emergencies as em
from district import rekap
from district.report import day_bounds
from district.site import pages
from district.views.emergencies import desk, local, places
from edge.events import Kind
from edge.segments import LOST_REASONS
from sync.topics import POST_ID

bp = Blueprint("posts", __name__)

RECENT = 200  # events of the day shown, newest first
EMERGENCY_DAYS = 14


@bp.get("/posts/<post>")
def history(post: str) -> str:
    site = pages()
    if not POST_ID.fullmatch(post):
        abort(404)
    day = request.args.get("day") or site.today()
    try:
        day = date.fromisoformat(day).isoformat()
    except ValueError:
        abort(400, f"{day[:20]!r} is not a date like 2026-11-27")
    first = (
        date.fromisoformat(max(day, "0001-01-15")) - timedelta(days=EMERGENCY_DAYS)
    ).isoformat()
    now = desk().now()
    with site.open() as db:
        posts = db.posts()
        row = next((p for p in posts if p["post"] == post), None)
        if row is None:
            abort(404)
        start, _ = day_bounds(first, day, site.zone)
        alarms = em.between(em.sql(db), start, "~", post=post)
        refused = rekap.refusals(db, post, day, site.zone)
        events = list(db.events(*day_bounds(day, day, site.zone), post=post))
        lost = db.lost_reasons(post)
    return render_template(
        "post.html",
        post=post,
        row=row,
        place=places(site, [row])[post],
        day=day,
        alarms=[_alarm(a, now) for a in reversed(alarms)],
        refused=refused,
        events=[_event(e) for e in reversed(events[-RECENT:])],
        more=max(len(events) - RECENT, 0),
        lost=[{**r, "reason": r["reason"] if r["reason"] in LOST_REASONS else None} for r in lost],
        local=lambda text: local(text, site),
    )


def _alarm(alarm: em.Emergency, now: Any) -> dict[str, Any]:
    return {"e": alarm, "state": alarm.state(now, desk().rules)}


def _event(event: Any) -> dict[str, Any]:
    """What the history shows of an event: never a visitor's or a referral's details."""
    kind = event["kind"]
    shown = {
        k: event.get(k)
        for k in ("seq", "time", "kind", "who", "temp_c", "screening", "ref", "fault")
    }
    data = event.get("data") or {}
    if kind == Kind.NOTE:
        shown["note"] = next((k for k in ("emergency", "referral") if k in data), "note")
    return shown
