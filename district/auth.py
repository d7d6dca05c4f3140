"""The district page's door: every request but the login page needs a session (pages go to
`/login?next=...`, the JSON API answers 401), every POST needs the session's CSRF token,
and `require(role)` keeps a view to operators or admins. `current_user()` for templates.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from district.accounts import (
    ROLES,
    SESSION_MAX_S,
    TOUCH_S,
    User,
    as_handle,
    csrf_for,
    opened,
    session,
    touch,
)
from district.site import pages
from district.storage import SQLHandle, StorageError
from web.security import safe_next

log = logging.getLogger(__name__)

COOKIE = "posko_district_session"
FORM_COOKIE = "posko_district_form"  # the login form's CSRF token, before any session
OPEN = frozenset({"auth.login", "auth.log_in_now", "static", "language.choose"})  # no login
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    app.before_request(_gate)
    app.after_request(_form_cookie)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user


def current_user() -> User | None:
    """Who is logged in for this request (None on the login page before logging in)."""
    user: User | None = g.get("district_user")
    return user


def session_token() -> str | None:
    """The cookie's token of this request's open session (for logging out)."""
    token: str | None = g.get("district_token")
    return token


def csrf_token() -> str:
    """The token every form (field `csrf_token`) and script (header `X-CSRF-Token`) sends."""
    token = session_token()
    if token is not None:
        return csrf_for(token)
    if "district_form_token" not in g:
        sent = request.cookies.get(FORM_COOKIE, "")
        g.district_form_token = sent if 20 <= len(sent) <= 64 else secrets.token_urlsafe(24)
    form_token: str = g.district_form_token
    return form_token


def require(role: str) -> Callable[[F], F]:
    """Keep a view to users holding `role` ("operator": emergencies; "admin": registry
    and users); others get 403."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a role; roles: {', '.join(ROLES)}")

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return _log_in_first()
            if not user.can(role):
                return refuse(403, "role")
            return view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


@contextmanager
def writing() -> Iterator[SQLHandle]:
    """The district database opened for writing, for one change the page makes."""
    with opened(pages().db) as handle:
        yield handle


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(("text/html", "application/json"))
    return request.path.startswith("/api/") or best == "application/json"


def refuse(status: int, reason: str) -> Any:
    """A refusal in words: JSON for the API, a page for a person ("login", "role", "csrf")."""
    if wants_json():
        return jsonify({"error": reason, "status": status}), status
    return render_template("refused.html", status=status, reason=reason), status


def form_token_matches(expected: str | None) -> bool:
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    return bool(expected and sent) and hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), str(expected).encode()
    )


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_MAX_S),
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
    )


def _gate() -> Any:
    _find_session()
    if request.endpoint in OPEN and request.routing_exception is None:
        return None
    if current_user() is None:
        return _log_in_first()
    posting = request.method not in SAFE_METHODS and request.routing_exception is None
    if posting and not form_token_matches(csrf_token()):
        return refuse(400, "csrf")
    return None


def _find_session() -> None:
    token = request.cookies.get(COOKIE, "")
    if not 20 <= len(token) <= 64:
        return
    try:
        with pages().open() as storage:
            found = session(as_handle(storage), token)
    except StorageError as e:
        log.warning("cannot check a district session: %s", e)
        if request.endpoint in OPEN:
            return  # the login page, the static files and the language switch still work
        raise  # a 503 that says so, not a login form that would fail the same way
    if found is None:
        return
    g.district_user, g.district_token = found.user, token
    if time.time() - found.seen > TOUCH_S:
        try:
            with writing() as handle:
                touch(handle, token)
        except StorageError as e:  # the session stays open; its idle time restarts later
            log.warning("cannot note a district session's use: %s", e)


def _log_in_first() -> Any:
    if wants_json() or request.method not in SAFE_METHODS:
        return refuse(401, "login")
    target: str | None = request.full_path.rstrip("?")
    try:
        target = safe_next(target, default="") or None
    except HTTPException:  # a path no link of the page has: no way back to it
        target = None
    if target == "/":
        target = None
    return redirect(url_for("auth.login", next=target))


def _form_cookie(response: Response) -> Response:
    token = g.get("district_form_token")
    if token and request.cookies.get(FORM_COOKIE) != token:
        response.set_cookie(
            FORM_COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure
        )
    return response
