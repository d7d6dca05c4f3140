"""The overview: every post online or not, backlog, today's figures, gaps, rejected
payloads and the district's privacy log (`/`), and the same as JSON (`/api/posts`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from district.report import overview
from district.site import pages

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    site = pages()
    with site.open() as db:
        report = overview(db, site.today(), site.zone)
        rejected = db.quarantined()[-20:]
        privacy = db.privacy_log(10)
    return render_template(
        "district.html",
        report=report,
        rejected=rejected,
        zone=site.zone.key,
        keep=site.keep,
        privacy=privacy,
    )


@bp.get("/api/posts")
def api_posts() -> dict[str, Any]:
    site = pages()
    with site.open() as db:
        return overview(db, site.today(), site.zone)
