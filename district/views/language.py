"""The district page's language switch: a cookie, then back to the page it came from."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, redirect, request

from web.i18n import COOKIE, LANGUAGES
from web.security import safe_next

bp = Blueprint("language", __name__)

YEAR_S = 365 * 24 * 3600


@bp.get("/lang/<code>")
def choose(code: str) -> Any:
    if code not in LANGUAGES:
        abort(404)
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(COOKIE, code, max_age=YEAR_S, samesite="Strict", httponly=True)
    return response
