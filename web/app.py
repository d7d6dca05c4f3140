"""The application factory of the guard's screen: `create_app(config, post)`.

One blueprint per page area (live view, visitors, report, history, settings, system);
services live in `app.extensions["posko"]`, never in globals.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from edge.config import Config
from edge.post import Post
from web import i18n, security
from web.services import HealthCheck, PoskoWeb, SyncState
from web.sessions import SessionEpoch
from web.views import admin, history, live, report, system, visitors

MAX_BODY = 32 * 1024  # no form of the page comes near this


def create_app(
    config: Config,
    post: Post,
    *,
    health: HealthCheck | None = None,
    sync: SyncState | None = None,
    testing: bool = False,
) -> Flask:
    """The page for `post`; `config` is the configuration it starts with (live values are
    read from `post.config`, which the settings page changes). `health` and `sync` come
    from the runtime of `posko run`; without them the page checks the post itself."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=security.secret_key(post.data_dir),
        MAX_CONTENT_LENGTH=MAX_BODY,
        MAX_FORM_MEMORY_SIZE=MAX_BODY,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="posko_session",
        TESTING=testing,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    services = PoskoWeb(post, health=health, sync=sync)
    services.init_app(app)
    i18n.init_app(app, lambda: services.page_options.language)
    security.init_app(app, lambda: services.page_options.lan_access, SessionEpoch(post.data_dir))
    for blueprint in (live.bp, visitors.bp, report.bp, history.bp, admin.bp, system.bp):
        app.register_blueprint(blueprint)

    @app.context_processor
    def page() -> dict[str, Any]:
        return {"post_name": services.config.post.name, "admin": security.is_admin()}

    return app
