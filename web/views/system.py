"""The page's plumbing: `/healthz` for watchdogs, and the language switch."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, request

from web.i18n import COOKIE, LANGUAGES
from web.security import safe_next
from web.services import posko

bp = Blueprint("system", __name__)

YEAR_S = 365 * 24 * 3600


@bp.get("/healthz")
def healthz() -> Any:
    health = posko().health()
    return jsonify(health.as_json()), 200 if health.ok else 503


@bp.get("/lang/<code>")
def language(code: str) -> Any:
    if code not in LANGUAGES:
        abort(404)
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(COOKIE, code, max_age=YEAR_S, samesite="Strict", httponly=True)
    return response
