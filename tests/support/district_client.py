"""A logged-in test client of the district page: `district_client(db, role="admin")` adds a
user of that role (unless one exists) and logs in through `/login` as a browser would.

Users made here are hashed with a cheap scrypt cost so that the unit layer stays fast; the
login path checked is the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from district.accounts import Cost, add_user, csrf_for, opened, users
from district.auth import COOKIE, FORM_COOKIE
from district.web import create_app

PASSWORD = "kata-sandi-uji-123"
CHEAP = Cost(n=2**8, r=8, p=1)  # ~1 ms a check: tests only, never the default


def make_user(db: str | Path, name: str, role: str, password: str = PASSWORD) -> None:
    with opened(db) as handle:
        if all(user.name != name for user in users(handle)):
            add_user(handle, name, role, password, cost=CHEAP)


def log_in(
    client: FlaskClient, name: str, password: str = PASSWORD, address: str = "127.0.0.1"
) -> Any:
    """Open the login page (its form token), then send the form; the answer."""
    client.get("/login")
    cookie = client.get_cookie(FORM_COOKIE)
    token = cookie.value if cookie else ""
    form = {"name": name, "password": password, "csrf_token": token}
    return client.post("/login", data=form, environ_base={"REMOTE_ADDR": address})


def csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's session (for POSTs: field `csrf_token`)."""
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "not logged in"
    return csrf_for(cookie.value)


def district_app(db: str | Path, **options: Any) -> Flask:
    app = create_app(db, **options)
    app.config["TESTING"] = True
    return app


def district_client(
    db: str | Path, role: str = "admin", *, name: str | None = None, app: Flask | None = None,
    address: str = "127.0.0.1", **options: Any,
) -> FlaskClient:  # fmt: skip
    """A client of `app` (or a new app on `db` with `options`) logged in as `name`
    (default: the role's name), a user of `role` added first if need be."""
    name = name or role
    make_user(db, name, role)
    client = (app or district_app(db, **options)).test_client()
    answer = log_in(client, name, address=address)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    return client
