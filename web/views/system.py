"""The page's plumbing: `/healthz` for watchdogs, and the language switch."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from web.i18n import switch_to
from web.services import posko

bp = Blueprint("system", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    health = posko().health()
    return jsonify(health.as_json()), 200 if health.ok else 503


@bp.get("/lang/<code>")
def language(code: str) -> Any:
    return switch_to(code)
