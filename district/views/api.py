"""The district page's JSON API (docs/district-api.md): `/api/posts`, every post as the
overview shows it, and `/api/regions`, kecamatan -> desa -> posts with totals. Both take
the overview's `q`, `state`, `region` and `sort` parameters (400 on a bad one).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request

from district.board import board, regions, select, selection
from district.site import pages

bp = Blueprint("api", __name__)


def chosen_board() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The board and the posts that the request's parameters select (400 if one is bad)."""
    try:
        wanted = selection(request.args)
    except ValueError as e:
        abort(400, f"bad parameter: {e}")
    site = pages()
    with site.open() as db:
        found = board(db, site.today(), site.zone, site.registry)
    return found, select(found["posts"], wanted)


@bp.get("/api/posts")
def api_posts() -> Any:
    found, posts = chosen_board()
    return jsonify({**found, "posts": posts})


@bp.get("/api/regions")
def api_regions() -> Any:
    found, posts = chosen_board()
    registry = pages().registry
    return jsonify(
        {
            "today": found["today"],
            "zone": found["zone"],
            "district": {"name": registry.name, "code": registry.code},
            "link": found["link"],
            "kecamatan": regions(posts, registry),
        }
    )
