"""Logging in and out of the district page (`/login`, `/logout`); the door itself, the
roles and the CSRF check are `district.auth`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

from district.accounts import LoginRefused, as_handle, has_users, log_in, log_out
from district.auth import (
    COOKIE,
    FORM_COOKIE,
    csrf_token,
    current_user,
    form_token_matches,
    refuse,
    session_token,
    set_session_cookie,
    writing,
)
from district.site import pages
from district.storage import StorageError
from web.security import safe_next

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


@bp.get("/login")
def login() -> Any:
    target = safe_next(request.args.get("next"))
    if current_user() is not None:
        return redirect(target)
    return _form(target)


@bp.post("/login")
def log_in_now() -> Any:
    target = safe_next(request.form.get("next"))
    if not form_token_matches(request.cookies.get(FORM_COOKIE)):
        return refuse(400, "csrf")
    name = request.form.get("name", "").strip().lower()[:64]
    try:
        with writing() as handle:
            old = session_token()
            if old:  # a new login never keeps the old session (fixation)
                log_out(handle, old)
            token = log_in(handle, name, request.form.get("password", ""), _address())
    except LoginRefused as refused:
        wait_min = max(1, round(refused.wait_s / 60))
        return _form(target, name=name, problem=refused.reason, wait_min=wait_min), 401
    response = redirect(target)
    set_session_cookie(response, token)
    response.delete_cookie(FORM_COOKIE)
    return response


@bp.post("/logout")
def logout() -> Any:
    token = session_token()
    if token:
        with writing() as handle:
            log_out(handle, token)
    response = redirect(url_for("auth.login"))
    response.delete_cookie(COOKIE)
    return response


def _form(target: str, **shown: Any) -> str:
    site = pages()
    try:
        with site.open() as storage:
            first_user = not has_users(as_handle(storage))
    except StorageError:  # no database yet: nobody can have been added
        first_user = True
    csrf_token()  # the form's token, set as a cookie with the answer
    return render_template("login.html", next=target, first_user=first_user, db=site.db, **shown)


def _address() -> str:
    return request.remote_addr or "unknown"
