"""The district page's login and roles: nothing without a login, lockouts that outlive a
restart, sessions that end at logout, removal and a new password, roles, CSRF, the audit
trail, and `posko district user`."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from district import accounts
from district.accounts import LoginRefused, audit, audit_log, opened
from district.auth import COOKIE, OPEN, require
from district.backends import open_storage
from edge import events as ev
from edge.events import Kind, Who
from posko.cli import main
from sync.batch import Batch
from tests.support.district_client import (
    CHEAP,
    PASSWORD,
    csrf,
    district_app,
    district_client,
    log_in,
    make_user,
)

POST = "posko-rahasia"  # a post id that must not leak to anyone not logged in


@pytest.fixture
def db(district_db: str) -> str:
    """A district database of each backend holding two of a post's entries."""
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        ev.make(POST, s, now - timedelta(minutes=s), Kind.IN, who=Who.RESIDENT) for s in (1, 2)
    ]
    with open_storage(district_db) as storage:
        storage.store_batch(Batch.of(POST, events))
    return district_db


@pytest.fixture
def app(db: str) -> Flask:
    return district_app(db)


def sample_path(rule: Rule) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", "posko-lain" if name == "post" else "1", path)
    return path


def guarded_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, path) of every route but the login page, the stylesheet and the language."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in OPEN:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((method, sample_path(rule)))
    return routes


def assert_refused(client: FlaskClient, method: str, path: str) -> None:
    answer = client.open(path, method=method)
    body = answer.get_data(as_text=True)
    if path.startswith("/api/") or method != "GET":
        assert answer.status_code == 401, (method, path, answer.status_code)
        if path.startswith("/api/"):
            assert answer.get_json() == {"error": "login", "status": 401}
    else:
        assert answer.status_code == 302, (method, path, answer.status_code)
        assert answer.headers["Location"].startswith("/login"), (method, path)
    assert POST not in body, (method, path)


def test_district_accounts_every_route_refuses_without_a_login(app: Flask) -> None:
    routes = guarded_routes(app)
    assert {("GET", "/"), ("GET", "/export.csv"), ("POST", "/logout")} <= set(routes)
    assert any(path.startswith("/api/") for _, path in routes)
    client = app.test_client()
    for method, path in routes:
        assert_refused(client, method, path)
    client.set_cookie(COOKIE, "x" * 43)  # a made-up session token opens nothing either
    for method, path in routes:
        assert_refused(client, method, path)
    print(f"{len(routes)} routes refused without a login")


def test_district_accounts_login_opens_the_page_and_names_who_is_in(db: str) -> None:
    client = district_client(db, "operator", name="sari")
    page = client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Masuk sebagai sari (operator)" in text and POST in text
    assert client.get("/api/posts").status_code == 200
    assert client.get("/export.csv").status_code == 200


def test_district_accounts_cookie_is_http_only_and_same_site_strict(db: str) -> None:
    make_user(db, "budi", "viewer")
    answer = log_in(district_app(db).test_client(), "budi")
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    with opened(db) as handle:  # only a hash of the token is kept
        (kept,) = handle.conn.execute("SELECT token_hash FROM sessions").fetchone()
    assert cookie.split(";")[0].split("=", 1)[1] not in kept


def test_district_accounts_login_goes_back_to_the_page_asked_for_and_stays_local(
    app: Flask, db: str
) -> None:
    make_user(db, "budi", "viewer")
    client = app.test_client()
    first = client.get("/export.csv?from=2026-11-01&to=2026-11-02")
    assert (
        first.headers["Location"] == "/login?next=/export.csv?from%3D2026-11-01%26to%3D2026-11-02"
    )
    form = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'value="/export.csv?from=2026-11-01&amp;to=2026-11-02"' in form
    token = client.get_cookie("posko_district_form")
    assert token is not None
    answer = client.post(
        "/login",
        data={"name": "budi", "password": PASSWORD, "csrf_token": token.value,
              "next": "/export.csv?from=2026-11-01&to=2026-11-02"},
    )  # fmt: skip
    assert answer.headers["Location"] == "/export.csv?from=2026-11-01&to=2026-11-02"
    other = district_app(db).test_client()
    other.get("/login")
    cookie = other.get_cookie("posko_district_form")
    assert cookie is not None
    away = other.post(
        "/login",
        data={"name": "budi", "password": PASSWORD, "csrf_token": cookie.value,
              "next": "//evil.example/"},
    )  # fmt: skip
    assert away.headers["Location"] == "/"


def test_district_accounts_wrong_passwords_lock_the_name_out_even_after_a_restart(
    db: str,
) -> None:
    make_user(db, "budi", "admin")
    client = district_app(db).test_client()
    for _ in range(accounts.LOCK_AFTER_NAME - 1):
        wrong = log_in(client, "budi", "bukan-sandinya")
        assert wrong.status_code == 401
        assert "Nama pengguna atau kata sandi salah" in wrong.get_data(as_text=True)
    last = log_in(client, "budi", "bukan-sandinya")
    assert "Coba lagi dalam 5 menit" in last.get_data(as_text=True)
    restarted = district_app(db).test_client()  # a new app on the same database
    refused = log_in(restarted, "budi", PASSWORD)
    assert refused.status_code == 401 and COOKIE not in refused.headers.get("Set-Cookie", "")
    assert "Coba lagi dalam" in refused.get_data(as_text=True)
    assert restarted.get("/").status_code == 302


def test_district_accounts_many_names_from_one_address_lock_that_address(db: str) -> None:
    make_user(db, "budi", "viewer")
    client = district_app(db).test_client()
    per_name = accounts.LOCK_AFTER_NAME - 1  # no name is locked by itself
    with opened(db) as handle:
        for n in range(0, accounts.LOCK_AFTER_ADDRESS, per_name):
            accounts.add_user(handle, f"tebak-{n // per_name}", "viewer", PASSWORD, cost=CHEAP)
    for n in range(accounts.LOCK_AFTER_ADDRESS):
        log_in(client, f"tebak-{n // per_name}", "salah-salah-salah", address="10.0.0.9")
    assert log_in(client, "budi", address="10.0.0.9").status_code == 401
    assert log_in(client, "budi", address="10.0.0.10").status_code == 302


def test_district_accounts_a_lockout_ends_and_doubles_the_next_time(db: str) -> None:
    make_user(db, "budi", "viewer")
    now = 1_800_000_000.0
    with opened(db) as handle:
        for _ in range(accounts.LOCK_AFTER_NAME):
            with pytest.raises(LoginRefused):
                accounts.log_in(handle, "budi", "salah-salah", "10.0.0.1", now=now)
        with pytest.raises(LoginRefused) as locked:
            accounts.log_in(handle, "budi", PASSWORD, "10.0.0.1", now=now + 60)
        assert locked.value.reason == "locked" and locked.value.wait_s == accounts.LOCK_S - 60
        later = now + accounts.LOCK_S + 1
        for _ in range(accounts.LOCK_AFTER_NAME):
            with pytest.raises(LoginRefused):
                accounts.log_in(handle, "budi", "salah-salah", "10.0.0.2", now=later)
        with pytest.raises(LoginRefused) as again:
            accounts.log_in(handle, "budi", PASSWORD, "10.0.0.2", now=later)
        assert again.value.wait_s == 2 * accounts.LOCK_S
        token = accounts.log_in(handle, "budi", PASSWORD, "10.0.0.2", now=later + 2 * 300 + 1)
        assert accounts.session(handle, token, now=later + 2 * 300 + 2) is not None


def test_district_accounts_a_cookie_saved_before_logout_opens_nothing(db: str) -> None:
    client = district_client(db, "viewer")
    saved = client.get_cookie(COOKIE)
    assert saved is not None
    out = client.post("/logout", data={"csrf_token": csrf(client)})
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    thief = district_app(db).test_client()
    thief.set_cookie(COOKIE, saved.value)
    assert thief.get("/").status_code == 302
    assert thief.get("/api/posts").status_code == 401


def test_district_accounts_a_removed_user_is_out_at_once(db: str) -> None:
    client = district_client(db, "viewer", name="ani")
    assert client.get("/").status_code == 200
    assert main(["district", "user", "remove", "ani", "--db", str(db)]) == 0
    assert client.get("/").status_code == 302
    assert client.get("/api/posts").status_code == 401


def test_district_accounts_a_new_password_ends_the_old_sessions(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = district_client(db, "viewer", name="ani")
    monkeypatch.setattr("sys.stdin", io.StringIO("sandi-yang-baru-1\n"))
    assert main(["district", "user", "passwd", "ani", "--password-stdin", "--db", str(db)]) == 0
    assert client.get("/").status_code == 302
    assert log_in(client, "ani").status_code == 401  # the old password no longer works
    assert log_in(client, "ani", "sandi-yang-baru-1").status_code == 302


def test_district_accounts_roles_keep_actions_to_those_who_hold_them(db: str) -> None:
    app = district_app(db)
    app.add_url_rule("/test/act", "act", require("operator")(lambda: "done"), methods=["POST"])
    for role, status in (("viewer", 403), ("operator", 200), ("admin", 200)):
        client = district_client(db, role, app=app)
        answer = client.post("/test/act", data={"csrf_token": csrf(client)})
        assert answer.status_code == status, role
    viewer = district_client(db, "viewer", app=app)
    refused = viewer.post("/test/act", data={"csrf_token": csrf(viewer)}).get_data(as_text=True)
    assert "Peran Anda (pemantau) tidak boleh melakukan ini" in refused


def test_district_accounts_a_viewer_cannot_acknowledge_an_emergency(db: str) -> None:
    app = district_app(db)
    rule = next((r for r in app.url_map.iter_rules() if r.endpoint.endswith("acknowledge")), None)
    if rule is None:
        pytest.fail("the district page has no route to acknowledge an emergency")
    viewer = district_client(db, "viewer", app=app)
    answer = viewer.post(sample_path(rule), data={"csrf_token": csrf(viewer)})
    assert answer.status_code == 403
    with opened(db) as handle:
        acted = handle.conn.execute("SELECT COUNT(*) FROM emergency_actions").fetchone()[0]
    assert acted == 0


def test_district_accounts_a_post_without_the_csrf_token_is_refused(db: str) -> None:
    client = district_client(db, "viewer")
    refused = client.post("/logout", data={"csrf_token": "not-the-token"})
    assert refused.status_code == 400
    assert "Muat ulang halaman" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 200  # still logged in
    assert client.post("/logout", headers={"X-CSRF-Token": csrf(client)}).status_code == 302
    assert client.get("/").status_code == 302
    make_user(db, "budi", "viewer")
    stranger = district_app(db).test_client()  # a login form posted from elsewhere
    answer = stranger.post("/login", data={"name": "budi", "password": PASSWORD})
    assert answer.status_code == 400 and stranger.get_cookie(COOKIE) is None


def test_district_accounts_the_audit_table_records_each_action(db: str) -> None:
    make_user(db, "budi", "admin")
    client = district_app(db).test_client()
    log_in(client, "budi", "salah-salah-salah", address="10.1.1.1")
    log_in(client, "budi", address="10.1.1.1")
    client.post("/logout", data={"csrf_token": csrf(client)})
    with opened(db) as handle:
        audit(handle, "budi", "emergency_acknowledged", f"{POST} seq 7")
        accounts.remove_user(handle, "budi", by="admin")
        trail = list(reversed(audit_log(handle)))
    assert [(e["user"], e["action"]) for e in trail] == [
        (None, "user_added"),
        (None, "login_failed"),
        ("budi", "login"),
        ("budi", "logout"),
        ("budi", "emergency_acknowledged"),
        ("admin", "user_removed"),
    ]
    assert "10.1.1.1" in trail[1]["detail"] and "10.1.1.1" in trail[2]["detail"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT", e["at"]) for e in trail)


def test_district_accounts_a_fresh_database_says_how_to_add_the_first_admin(
    tmp_path: Path,
) -> None:
    db = tmp_path / "new.db"
    page = district_app(db).test_client().get("/login").get_data(as_text=True)
    assert f"posko district user add NAMA --role admin --db {db}" in page
    assert "Tidak ada kata sandi bawaan" in page
    client = district_app(db).test_client()
    for name in ("admin", "root", "posko"):
        assert log_in(client, name, "admin").status_code == 401  # no default account


def test_district_accounts_passwords_are_kept_as_salted_scrypt_hashes(db: str) -> None:
    with opened(db) as handle:
        accounts.add_user(handle, "ani", "viewer", PASSWORD)
        accounts.add_user(handle, "budi", "viewer", PASSWORD)
        kept = [r[0] for r in handle.conn.execute("SELECT password FROM users ORDER BY name")]
    assert all(k.startswith("scrypt$16384$8$1$") and PASSWORD not in k for k in kept)
    assert kept[0] != kept[1]  # a salt of its own
    assert accounts.password_matches(kept[0], PASSWORD)
    assert not accounts.password_matches(kept[0], PASSWORD + "x")


def test_district_accounts_cli_adds_lists_and_removes_users(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    user = ["district", "user"]
    assert main([*user, "list", "--db", str(db)]) == 0
    assert "no users yet" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*user, "add", "budi", "--role", "admin", "--password-stdin", "--db", str(db)]) == 0
    typed = iter(["sandi-ketikan-1", "sandi-ketikan-1", "sandi-ketikan-1", "beda-sandinya"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert main([*user, "add", "ani", "--role", "viewer", "--db", str(db)]) == 0
    assert main([*user, "add", "eko", "--role", "viewer", "--db", str(db)]) == 2
    assert "differ" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        main([*user, "add", "budi", "--role", "viewer", "--password-stdin", "--db", str(db)]) == 1
    )
    assert "exists already" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("pendek\n"))
    assert main([*user, "add", "eko", "--role", "viewer", "--password-stdin", "--db", str(db)]) == 2
    with pytest.raises(SystemExit):
        main([*user, "add", "eko", "--role", "raja", "--db", str(db)])
    assert log_in(district_app(db).test_client(), "ani", "sandi-ketikan-1").status_code == 302
    capsys.readouterr()
    assert main([*user, "list", "--db", str(db)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["name", "role", "created", "last", "login"]
    assert rows[1].split()[:2] == ["ani", "viewer"] and re.search(r"\d\d:\d\d\s+\d{4}-", rows[1])
    assert rows[2].split()[:2] == ["budi", "admin"] and rows[2].endswith("never")
    assert main([*user, "remove", "ani", "--db", str(db)]) == 0
    assert main([*user, "remove", "ani", "--db", str(db)]) == 1
    with opened(db) as handle:
        actions = [(e["user"] or "")[:4] + " " + e["action"] for e in audit_log(handle)]
    assert actions[0] == "cli: user_removed" and "cli: user_added" in actions


def test_district_accounts_sessions_end_when_idle_and_after_a_day(db: str) -> None:
    make_user(db, "budi", "viewer")
    now = 1_800_000_000.0
    with opened(db) as handle:
        token = accounts.log_in(handle, "budi", PASSWORD, "10.0.0.1", now=now)
        idle = now + accounts.SESSION_IDLE_S + 1
        assert accounts.session(handle, token, now=idle) is None
        accounts.touch(handle, token, now=idle - 60)  # used a minute before: still open
        assert accounts.session(handle, token, now=idle) is not None
        accounts.touch(handle, token, now=now + accounts.SESSION_MAX_S - 1)
        assert accounts.session(handle, token, now=now + accounts.SESSION_MAX_S + 1) is None
