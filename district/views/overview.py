"""The overview (`/`): the receiver's link to the broker, then every post in its kecamatan
and desa with totals at each level, filtered and sorted by query parameters; rejected
payloads and the district's privacy log below.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from district.board import SORTS, STATES, regions, selection
from district.site import pages
from district.views.api import chosen_board

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    found, posts = chosen_board()
    site = pages()
    with site.open() as db:
        rejected = db.quarantined()[-20:]
        privacy = db.privacy_log(10)
    return render_template(
        "district.html",
        board=found,
        groups=regions(posts, site.registry),
        shown=len(posts),
        chosen=selection(request.args),
        states=STATES,
        sorts=tuple(SORTS),
        kecamatan=site.registry.kecamatan,
        rejected=rejected,
        keep=site.keep,
        privacy=privacy,
    )
