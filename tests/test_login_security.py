"""Failed logins slow down; logout ends every session; security headers; no demo in
production."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol import create_app
from bousol.ledger import logins
from bousol.ledger.models import utcnow
from config import ProductionConfig
from tests.helpers import csrf_token, login

PASSWORD = "password-123"


def test_five_failures_on_a_username_slow_it_down(client, ledger):
    marie = ledger.soliste()
    for _ in range(logins.MAX_FAILURES_PER_USERNAME):
        assert login(client, marie.username, "wrong-password").status_code == 422
    blocked = login(client, marie.username, PASSWORD)  # even the right password waits
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.text
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60 + 1
    # Another user from the same address is not affected (below the address limit).
    karim = ledger.soliste()
    assert login(client, karim.username, PASSWORD).request.path == "/soliste/"


def test_the_window_passes_and_success_resets_the_count(ledger, new_uow):
    name, address = "someone", "203.0.113.7"
    first = utcnow()
    for _ in range(logins.MAX_FAILURES_PER_USERNAME):
        logins.record_attempt(new_uow(), name, address, succeeded=False)
    now = utcnow()  # after the failures: the wait counts from the first of them
    wait = logins.seconds_to_wait(new_uow(read_only=True), name, address, now=now)
    elapsed = (now - first).total_seconds()
    assert 15 * 60 - elapsed - 1 <= wait <= 15 * 60 + 1  # the rest of the 15-minute window
    later = now + logins.WINDOW + dt.timedelta(seconds=2)
    assert logins.seconds_to_wait(new_uow(read_only=True), name, address, now=later) == 0
    logins.record_attempt(new_uow(), name, address, succeeded=True)
    assert logins.seconds_to_wait(new_uow(read_only=True), name, address) == 0


def test_many_usernames_from_one_address_are_slowed_down(ledger, new_uow):
    address = "198.51.100.9"
    for i in range(logins.MAX_FAILURES_PER_ADDRESS):
        logins.record_attempt(new_uow(), f"guess{i}", address, succeeded=False)
    assert logins.seconds_to_wait(new_uow(read_only=True), "fresh-name", address) > 0
    assert logins.seconds_to_wait(new_uow(read_only=True), "fresh-name", "192.0.2.1") == 0


def test_refused_attempts_are_not_counted(client, ledger):
    marie = ledger.soliste()
    for _ in range(logins.MAX_FAILURES_PER_USERNAME + 3):
        login(client, marie.username, "wrong-password")
    assert ledger.count("login_attempts") == logins.MAX_FAILURES_PER_USERNAME


def test_logout_ends_the_session_everywhere(app, ledger):
    marie = ledger.soliste()
    phone, desktop = app.test_client(), app.test_client()
    login(phone, marie.username, PASSWORD)
    page = login(desktop, marie.username, PASSWORD)
    stolen = desktop.get_cookie("session").value
    desktop.post("/deconnexion", data={"csrf_token": csrf_token(page.text)})
    # The phone's session and a copy of the old cookie both stop working.
    assert phone.get("/soliste/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/soliste/").status_code == 302
    # Logging in again works.
    assert login(phone, marie.username, PASSWORD).request.path == "/soliste/"


def test_security_headers(client):
    response = client.get("/connexion")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_demo_refused_with_the_production_config(database_url, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "y" * 64)
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=database_url)
    result = app.test_cli_runner().invoke(args=["bousol", "demo"])
    assert result.exit_code == 2 and "production" in result.output


@pytest.mark.parametrize("cookie_id", ["1", "1:", "x:abc", ":abc", "1:not-the-token"])
def test_forged_session_ids_are_refused(app, ledger, cookie_id):
    from bousol.web.auth import load_user

    ledger.soliste()
    with app.app_context():
        assert load_user(cookie_id) is None
