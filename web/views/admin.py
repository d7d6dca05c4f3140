"""Settings (*pengaturan*) behind the admin PIN: validated like the configuration file,
applied at once (`Post.reconfigure`), kept in `DATA/settings.toml`, recorded as an event.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from edge.events import Kind
from edge.settings import BY_KEY
from edge.station import Record
from web.forms import settings_change, settings_values
from web.i18n import translate
from web.overrides import PAGE_KEYS, load_overrides, save_overrides
from web.security import require_admin, safe_next, sign_in_admin, sign_out_admin
from web.services import posko
from web.views import submit

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)

PIN_FIELD_MAX = 64


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
