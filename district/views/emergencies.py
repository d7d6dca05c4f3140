"""Emergencies on the district page: `/api/emergencies` (what the banner script polls every
second: the active ones with their state, today's counts per post, silent posts), and the
operator's acknowledge and handle actions.

Polling, not server-sent events: waitress serves the page with a few threads, and an
event stream would hold one of them per open page for as long as the page stays open.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, redirect, request

from district import emergencies as em
from district import words
from district.auth import current_user, require, wants_json, writing
from district.registry import Place, Registry
from district.report import day_bounds
from district.site import Pages, pages
from edge.events import parse_time
from sync import topics
from sync.batch import MAX_SEQ
from web.security import safe_next

bp = Blueprint("emergencies", __name__)


@dataclass
class Desk:
    """The emergency settings and clock of the page (`app.extensions["posko_emergencies"]`);
    tests set `now` to move time."""

    rules: em.Rules = field(default_factory=em.Rules)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def desk() -> Desk:
    found: Desk = current_app.extensions["posko_emergencies"]
    return found


def registry(site: Pages) -> Registry:
    """The district's registry, if the page has one (post ids are shown otherwise)."""
    held = getattr(site, "registry", None)
    return held if isinstance(held, Registry) else Registry()


def places(site: Pages, posts: list[dict[str, Any]]) -> dict[str, Place]:
    """Where each known post stands: its name, desa and kecamatan."""
    book = registry(site)
    return {
        row["post"]: book.place(row["post"], row["status"].get("name"), row["status"].get("region"))
        for row in posts
    }


def local(time_text: str | None, site: Pages) -> str:
    """A UTC time text as the district reads it ("14.05 WIB"; with the date if not today)."""
    return words.local_time(time_text, site.zone, desk().now())


def local_date(time_text: str, site: Pages) -> str:
    return parse_time(time_text).astimezone(site.zone).date().isoformat()


@bp.get("/api/emergencies")
def api_emergencies() -> dict[str, Any]:
    site, rules, now = pages(), desk().rules, desk().now()
    today = now.astimezone(site.zone).date().isoformat()
    with site.open() as db:
        handle = em.sql(db)
        alarms = em.active(handle)
        posts = db.posts()
        counts = em.per_day(handle, *day_bounds(today, today, site.zone), site.zone)
    where = places(site, posts)
    silent = em.silent_posts(posts, now, site.zone, rules)
    return {
        "now": now.isoformat(),
        "escalate_after_s": rules.escalate_after_s,
        "silent_after_s": rules.silent_after_s,
        "active": [describe(e, where.get(e.post), now, site) for e in alarms],
        "today": {
            "day": today,
            "by_post": {post: n for (post, _), n in sorted(counts.items())},
            "total": sum(counts.values()),
        },
        "silent": [
            {
                **s,
                "name": _name(where.get(s["post"]), s["post"]),
                "since": local(s["last_seen"], site),
            }
            for s in silent
            if not (where.get(s["post"]) and where[s["post"]].hidden)
        ],
    }


def describe(
    alarm: em.Emergency, place: Place | None, now: datetime, site: Pages
) -> dict[str, Any]:
    """One emergency as the API and the banner show it."""
    ack = alarm.acknowledged
    return {
        "post": alarm.post,
        "seq": alarm.seq,
        "name": _name(place, alarm.post),
        "desa": (place.desa_name or place.region) if place else "",
        "time": alarm.time,
        "day": local_date(alarm.time, site),
        "local_time": local(alarm.time, site),
        "received": alarm.received,
        "state": alarm.state(now, desk().rules),
        "waiting_min": int(alarm.waiting_s(now) // 60),
        "acknowledged": (
            {"user": ack.user, "at": ack.at, "local_time": local(ack.at, site)} if ack else None
        ),
        "history": f"/posts/{alarm.post}",
        "acknowledge": f"/emergencies/{alarm.post}/{alarm.seq}/acknowledge",
        "handle": f"/emergencies/{alarm.post}/{alarm.seq}/handle",
    }


def _name(place: Place | None, post: str) -> str:
    return place.name if place else post


def operator() -> str:
    """Who is acting: the logged-in user's name."""
    user = current_user()
    return user.name if user is not None else "?"


@bp.post("/emergencies/<post>/<int:seq>/acknowledge")
@require("operator")
def acknowledge(post: str, seq: int) -> Any:
    return _act(post, seq, em.ACKNOWLEDGED, "")


@bp.post("/emergencies/<post>/<int:seq>/handle")
@require("operator")
def handle(post: str, seq: int) -> Any:
    return _act(post, seq, em.HANDLED, request.form.get("note", ""))


def _act(post: str, seq: int, action: str, note: str) -> Any:
    if not 1 <= seq <= MAX_SEQ or not topics.POST_ID.fullmatch(post):
        abort(404)  # no such emergency (and SQLite's integers end at 2**63)
    try:
        with writing() as handle:
            done = em.record(handle, post, seq, action, operator(), note, now=desk().now())
    except em.EmergencyError as e:
        if wants_json():
            return jsonify({"error": str(e), "status": 409}), 409
        # A person's form (someone else was quicker, or no note): the history shows why.
        return redirect(safe_next(request.form.get("next"), f"/posts/{post}"), 303)
    if wants_json():
        return jsonify({"action": done.action, "user": done.user, "at": done.at})
    return redirect(safe_next(request.form.get("next"), f"/posts/{post}"), 303)
