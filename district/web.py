"""The district page (Flask): the app factory, what its views share, and its server.

`create_app(db)` builds the app (`db` as given to `--db`) and registers the blueprints of
`district.views`; the storage is opened read-only per request, so the page never competes
with the receiver's writes. Its answers carry the guard's page's strict headers
(`web.security.strict_headers`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template
from werkzeug.exceptions import HTTPException

from district import auth as door
from district import words
from district.auth import wants_json
from district.emergencies import Rules
from district.registry import Registry
from district.report import DEFAULT_ZONE
from district.retention import Retention
from district.site import Pages
from district.storage import StorageError
from district.views import api, auth, emergencies, exports, language, overview, posts, rekap
from web.security import strict_headers

log = logging.getLogger(__name__)


def create_app(
    db: str | Path,
    *,
    zone: str = DEFAULT_ZONE,
    keep: Retention | None = None,
    registry: Registry | None = None,
    rules: Rules | None = None,
) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder="static")
    site = Pages(db, zone, keep or Retention(), registry)
    app.extensions["posko_district"] = site
    words.init_app(app, site.zone, site.registry.name)
    app.extensions["posko_emergencies"] = emergencies.Desk(rules or Rules())
    for view in (auth, overview, api, exports, language, emergencies, posts, rekap):
        app.register_blueprint(view.bp)
    door.init_app(app)  # a login for every page, CSRF on every POST
    app.after_request(strict_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StorageError, _storage_error)
    return app


TITLES = {400: "error.400", 404: "error.404", 405: "error.405"}  # others: error.other


def _http_error(error: HTTPException) -> Any:
    """A 4xx in the page's language (its detail as the code gave it), or JSON for the API."""
    code = error.code or 500
    if wants_json():
        return jsonify({"error": error.description, "status": code}), code
    title = TITLES.get(code, "error.other")
    return render_template("error.html", title=title, detail=error.description), code


def _storage_error(error: StorageError) -> Any:
    """The database could not answer (locked, gone, full): say so, and that it is not the
    user's fault; the receiver keeps its own log of why."""
    log.error("district page: %s", error)
    if wants_json():
        return jsonify({"error": "the district database is not available", "status": 503}), 503
    return render_template("error.html", title="error.storage", detail=""), 503


class PageServer:
    """The page served by waitress in a thread; close() stops it (idempotent)."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        from waitress.server import create_server

        self.server = create_server(app, host=host, port=port, threads=4)
        self.url = f"http://{host}:{self.server.effective_port}/"
        self._thread = threading.Thread(target=self.server.run, name="district-web", daemon=True)
        self._closed = False

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.server.close()
            self._thread.join(5)
