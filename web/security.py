"""What keeps the page safe: CSRF tokens, loopback-only unless allowed, the admin session,
strict headers and error pages that never show a stack trace.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import HTTPException, InternalServerError

from web.overrides import write_private
from web.sessions import SessionEpoch

log = logging.getLogger(__name__)

SECRET_FILE = "web_secret.key"
ADMIN_SESSION_S = 600  # an admin stays signed in this long after the last admin page
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
JSON_PATHS = ("/api/", "/healthz", "/press", "/recheck/", "/live/")
REASONS = ("csrf", "next")  # refusals with their own words on the error page
F = TypeVar("F", bound=Callable[..., Any])


def secret_key(data_dir: Path) -> bytes:
    """The session key, kept in the data directory so that a restart keeps sessions."""
    path = data_dir / SECRET_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    try:
        write_private(path, key)
    except OSError as e:
        log.warning("cannot keep the session key in %s (%s); sessions end at restart", path, e)
    return key


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _epoch() -> SessionEpoch:
    epoch: SessionEpoch = current_app.extensions["posko_sessions"]
    return epoch


def is_admin() -> bool:
    until = session.get("admin_until")
    return (
        isinstance(until, int | float)
        and until > time.time()
        and _epoch().holds(session.get("admin_epoch"))
    )


def sign_in_admin() -> None:
    session["admin_until"] = time.time() + ADMIN_SESSION_S
    session["admin_epoch"] = _epoch().current()
    session["csrf"] = secrets.token_urlsafe(32)  # a new token with the new privilege


def sign_out_admin() -> None:
    """End this admin session, and on the server every other one, so that a copy of the
    cookie taken before opens nothing."""
    session.pop("admin_until", None)
    session.pop("admin_epoch", None)
    session["csrf"] = secrets.token_urlsafe(32)
    _epoch().renew()


def require_admin(view: F) -> F:
    """Send a visitor without a valid admin session to the PIN page first."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        session["admin_until"] = time.time() + ADMIN_SESSION_S
        return view(*args, **kwargs)

    return cast(F, guarded)


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to, never another site.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so
    `/<TAB>/evil.example` leaves the site; and a header cannot carry CR or LF. The page's own
    links are printable ASCII: anything else is refused (400); a target that is not a local
    path (`//host`, `https:`) falls back to `default`."""
    if not target:
        return default
    if not all("!" <= c <= "~" for c in target):
        abort(400, "next")
    # Starting with one "/" and no backslash, it has neither a scheme nor a host.
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def strict_headers(response: Response) -> Response:
    """The headers every answer carries: no framing, no sniffing, nothing from elsewhere
    (the district's page uses them too)."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if "Cache-Control" not in response.headers and request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, lan_allowed: Callable[[], bool], sessions: SessionEpoch) -> None:
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.extensions["posko_sessions"] = sessions

    @app.before_request
    def guard() -> None:
        if not lan_allowed() and not is_loopback(request.remote_addr):
            abort(403)
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.routing_exception is None:
            sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
            expected = session.get("csrf")
            if not (
                isinstance(expected, str)
                and sent
                and hmac.compare_digest(sent.encode(), expected.encode())
            ):
                abort(400, "csrf")

    app.after_request(strict_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)


def _http_error(error: HTTPException) -> Any:
    code = error.code or 500
    reason = error.description if error.description in REASONS else str(code)
    if request.path.startswith(JSON_PATHS):
        return jsonify({"error": reason, "status": code}), code
    return render_template("error.html", code=code, reason=reason), code


def _crash(error: Exception) -> Any:
    # The one place an unexpected error is logged with its traceback; the browser gets a page.
    log.exception("error serving %s %s", request.method, request.path)
    return _http_error(InternalServerError())
