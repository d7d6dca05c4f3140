"""Settings (*pengaturan*) behind the admin PIN: validated like the configuration file,
applied at once (`Post.reconfigure`), kept in `DATA/settings.toml`, recorded as an event.
The post's clock is set here too, from the coordinator's device, after a confirm step.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from edge.clock import SettableClock
from edge.events import Kind, utc_text
from edge.settings import BY_KEY
from edge.station import Record
from web.forms import settings_change, settings_values
from web.i18n import translate
from web.overrides import PAGE_KEYS, load_overrides, save_overrides
from web.present import local
from web.security import require_admin, safe_next, sign_in_admin, sign_out_admin
from web.services import posko
from web.views import now, submit

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)

PIN_FIELD_MAX = 64
# A device time outside these is a broken device clock (the district's bounds too).
DEVICE_EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
DEVICE_LATEST = datetime(2099, 12, 31, 23, 59, tzinfo=UTC)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    pin = posko().pin
    target = safe_next(request.values.get("next"), url_for("admin.settings"))
    if request.method == "GET":
        return render_template(
            "login.html", target=target, pin_state=pin.state(), locked_s=pin.locked_for()
        )
    verdict = pin.check(request.form.get("pin", "")[:PIN_FIELD_MAX])
    if verdict.ok:
        sign_in_admin()
        return redirect(target)
    status = {"no_pin": 503, "unreadable": 503, "locked": 429}.get(verdict.reason, 401)
    return render_template(
        "login.html",
        target=target,
        pin_state=pin.state(),
        locked_s=verdict.locked_s,
        wrong=verdict.reason == "wrong",
    ), status


@bp.post("/logout")
def logout() -> Any:
    sign_out_admin()
    return redirect(url_for("live.index"))


@bp.route("/settings", methods=["GET", "POST"])
@require_admin
def settings() -> Any:
    services = posko()
    config = services.config
    if request.method == "GET":
        return _page(settings_values(config), {})
    new, changes, errors = settings_change(config, request.form)
    if new is None:
        shown = {k: request.form.get(k, "")[:100] for k in PAGE_KEYS}
        return _page(shown, errors), 400
    if not changes:
        flash(translate("settings.unchanged"), "stored")
        return redirect(url_for("admin.settings"))
    data_dir = config.post.data_dir
    stored = {k: v for k, v in load_overrides(data_dir).items() if k in PAGE_KEYS}
    stored.update({k: new[k] for k in changes})
    save_overrides(data_dir, stored)
    restart = services.reconfigure(new)
    outcome = submit(
        Record(
            Kind.SETTING,
            {
                "data": {
                    "changes": {k: [old, value] for k, (old, value) in changes.items()},
                    "source": "page",
                    "restart": restart,
                }
            },
        )
    )
    log.info("settings changed on the page: %s", ", ".join(sorted(changes)))
    recorded = outcome is not None and outcome.event is not None
    flash(
        translate("settings.saved" if recorded else "settings.saved_not_recorded"),
        "stored" if recorded else "error",
    )
    return redirect(url_for("admin.settings"))


def _page(values: dict[str, Any], errors: dict[str, str]) -> str:
    fields = [{"key": k, "setting": BY_KEY[k], "value": values.get(k, "")} for k in PAGE_KEYS]
    return render_template("settings.html", fields=fields, errors=errors)


@bp.route("/clock", methods=["GET", "POST"])
@require_admin
def clock() -> Any:
    """Set the post's time from the coordinator's device: look, confirm, then set."""
    post = posko().post
    settable = post.clock if isinstance(post.clock, SettableClock) else None
    if request.method == "GET":
        return _clock_page()
    device = _device_time()
    if device is None:
        return _clock_page(error="clock.bad_device"), 400
    if settable is None or settable.state() == "synced":
        return _clock_page(error="clock.not_settable"), 409
    if request.form.get("confirm") != "1":
        return _clock_page(device=device)
    before = now()
    settable.set_to(device)
    change = {"clock": [utc_text(before), utc_text(device)]}
    log.warning("clock set on the page from %s to %s", *change["clock"])
    outcome = submit(Record(Kind.SETTING, {"data": {"changes": change, "source": "page"}}))
    recorded = outcome is not None and outcome.event is not None
    shown = local(device, post.store.zone).strftime("%H:%M")
    flash(
        translate("clock.saved" if recorded else "clock.saved_not_recorded", time=shown),
        "stored" if recorded else "error",
    )
    return redirect(url_for("live.index"))


def _device_time() -> datetime | None:
    """The device's time sent by the page (milliseconds since 1970), if plausible."""
    try:
        ms = int(request.form.get("device_ms", "")[:20])
        moment = datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return moment if DEVICE_EARLIEST <= moment <= DEVICE_LATEST else None


def _clock_page(*, device: datetime | None = None, error: str | None = None) -> str:
    post = posko().post
    zone, moment = post.store.zone, now()
    settable = isinstance(post.clock, SettableClock)
    set_at = post.clock.set_at() if isinstance(post.clock, SettableClock) else None
    return render_template(
        "clock.html",
        settable=settable and post.clock.state() != "synced",
        state=post.clock.state(),
        post_time=_shown(moment, device or moment, zone),
        device_time="" if device is None else _shown(device, moment, zone),
        set_at="" if set_at is None else local(set_at, zone).strftime("%d/%m %H:%M"),
        error=error,
    )


def _shown(moment: datetime, other: datetime, zone: Any) -> str:
    """HH:MM, with the date in front when the other time falls on another day."""
    here, there = local(moment, zone), local(other, zone)
    return here.strftime("%H:%M" if here.date() == there.date() else "%d/%m/%Y %H:%M")
