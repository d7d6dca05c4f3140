"""The district page's language switch: a cookie, then back to the page it came from."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.i18n import switch_to

bp = Blueprint("language", __name__)


@bp.get("/lang/<code>")
def choose(code: str) -> Any:
    return switch_to(code)
