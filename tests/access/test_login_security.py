"""Failed logins slow down, cannot be raced nor turned into a lock-out; PINs count
apart; passwords are changed and reset; idle sessions end; logout ends every session;
security headers; no demo in production (docs/security.md)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import threading

import pytest
import sqlalchemy as sa

from bousol.app import create_app
from bousol.ledger.access import confirm, logins, parties, password_resets
from bousol.ledger.kernel import clock, mail
from bousol.ledger.kernel.errors import TooManyAttempts, WrongSecret
from bousol.ledger.models import utcnow
from config import ProductionConfig
from tests.helpers import (
    APPLICATION_FORM,
    CSRF_RE,
    PASSWORD,
    csrf_token,
    login,
    post_form,
    valid_siret,
)


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


@pytest.mark.parametrize(("failures", "minutes"), [
    (0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (10, 32), (11, 60), (40, 60)])
def test_the_delay_grows_with_each_failure(failures, minutes):
    assert logins.pair_delay(failures) == dt.timedelta(minutes=minutes)


def test_the_delay_counts_from_the_last_failure_and_success_resets_it(ledger, new_uow):
    name, address = "someone", "203.0.113.7"
    start = utcnow() - dt.timedelta(minutes=2)
    for i in range(logins.MAX_FAILURES_PER_USERNAME + 2):  # 7 failures, 10 s apart
        logins.record_attempt(new_uow(), name, address, False,
                              at=start + dt.timedelta(seconds=10 * i))
    last = start + dt.timedelta(seconds=60)
    now = utcnow()
    wait = logins.seconds_to_wait(new_uow(read_only=True), name, address, now=now)
    expected = (last + logins.pair_delay(7) - now).total_seconds()
    assert expected <= wait <= expected + 1  # 4 minutes from the 7th failure
    later = last + logins.pair_delay(7) + dt.timedelta(seconds=1)
    assert logins.seconds_to_wait(new_uow(read_only=True), name, address, now=later) == 0
    # Another address is not slowed down by this one's failures.
    assert logins.seconds_to_wait(new_uow(read_only=True), name, "192.0.2.50") == 0
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
    monkeypatch.setenv("BOUSOL_PUBLIC_URL", "https://bousol.example.org")
    monkeypatch.delenv("BOUSOL_CLOCK", raising=False)
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=database_url)
    result = app.test_cli_runner().invoke(args=["bousol", "demo"])
    assert result.exit_code == 2 and "production" in result.output


@pytest.mark.parametrize("cookie_id", ["1", "1:", "x:abc", ":abc", "1:not-the-token"])
def test_forged_session_ids_are_refused(app, ledger, cookie_id):
    from bousol.web.auth import load_user

    ledger.soliste()
    with app.app_context():
        assert load_user(cookie_id) is None


# ------------------------------------------------ issue 13: races and lock-outs


def _login_from(client, username, password, address):
    page = client.get("/connexion", environ_base={"REMOTE_ADDR": address})
    return client.post("/connexion", environ_base={"REMOTE_ADDR": address}, data={
        "csrf_token": csrf_token(page.text), "username": username, "password": password})


def _run_together(count, work):
    """``work(i)`` in ``count`` threads released at once; their results."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return work(i)

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_wrong_passwords_check_exactly_the_limit(app, ledger, monkeypatch):
    """40 wrong passwords at once for one username from one address: exactly the limit
    are checked (the attempt is reserved before the hash), the others get 429."""
    marie = ledger.soliste()
    checked, lock = [], threading.Lock()
    real_check = parties.check_password_hash

    def counting_check(stored, password):
        with lock:
            checked.append(password)
        return real_check(stored, password)

    monkeypatch.setattr(parties, "check_password_hash", counting_check)
    clients = [app.test_client() for _ in range(40)]
    pages = [c.get("/connexion").text for c in clients]

    def attempt(i):
        return clients[i].post("/connexion", data={
            "csrf_token": csrf_token(pages[i]), "username": marie.username,
            "password": f"wrong-password-{i}"}).status_code

    statuses = _run_together(40, attempt)
    assert len(checked) == logins.MAX_FAILURES_PER_USERNAME
    assert sorted(statuses) == ([422] * logins.MAX_FAILURES_PER_USERNAME
                                + [429] * (40 - logins.MAX_FAILURES_PER_USERNAME))
    assert ledger.count("login_attempts") == logins.MAX_FAILURES_PER_USERNAME


def test_concurrent_guesses_from_many_addresses_stop_at_the_username_limit(ledger, new_uow):
    checked, lock = [], threading.Lock()

    def check():
        with lock:
            checked.append(1)
        return None

    def attempt(i):
        try:
            logins.guarded(new_uow, "marie", f"198.51.100.{i + 1}", check)
        except TooManyAttempts:
            return "refused"
        return "checked"

    results = _run_together(40, attempt)
    assert len(checked) == logins.MAX_FAILURES_PER_USERNAME_ANYWHERE
    assert results.count("checked") == logins.MAX_FAILURES_PER_USERNAME_ANYWHERE


def test_an_attacker_cannot_take_a_till_offline(client, ledger):
    """Failures from elsewhere never lock the address the user logs in from."""
    till = ledger.prestataire()
    shop = "192.0.2.10"
    assert _login_from(client, till.username, PASSWORD, shop).status_code == 302
    client.post("/deconnexion", environ_base={"REMOTE_ADDR": shop},
                data={"csrf_token": csrf_token(client.get("/prestataire/").text)})
    attacker = type(client)(client.application)
    for i in range(logins.MAX_FAILURES_PER_USERNAME_ANYWHERE):
        _login_from(attacker, till.username, "wrong-password", f"203.0.113.{i + 1}")
    # A new address is paused for the window; the till's own address is not.
    assert _login_from(attacker, till.username, PASSWORD, "203.0.113.200").status_code == 429
    assert _login_from(client, till.username, PASSWORD, shop).status_code == 302


def test_failures_behind_one_proxy_do_not_lock_its_known_users(client, ledger):
    proxy = "10.1.2.3"
    marie, karim = ledger.soliste(), ledger.soliste()
    assert _login_from(client, marie.username, PASSWORD, proxy).status_code == 302
    stranger = type(client)(client.application)
    for i in range(logins.MAX_FAILURES_PER_ADDRESS):
        _login_from(stranger, f"nobody{i}", "wrong-password", proxy)
    newcomer = type(client)(client.application)
    assert _login_from(newcomer, karim.username, PASSWORD, proxy).status_code == 429
    again = type(client)(client.application)
    assert _login_from(again, marie.username, PASSWORD, proxy).status_code == 302


def _with_pin(ledger, new_uow, pin="4821"):
    marie = ledger.soliste()
    confirm.set_pin(new_uow, marie, password=PASSWORD, pin=pin, address="192.0.2.1")
    return marie


def test_wrong_pins_block_pin_payments_but_never_the_login(client, ledger, new_uow):
    marie = _with_pin(ledger, new_uow)
    for _ in range(logins.MAX_PIN_FAILURES):
        with pytest.raises(WrongSecret):
            confirm.confirm(new_uow, user_id=marie.user_id, secret="0000", address="127.0.0.1")
    with pytest.raises(TooManyAttempts) as blocked:  # even the right PIN, for a while
        confirm.confirm(new_uow, user_id=marie.user_id, secret="4821", address="127.0.0.1")
    assert "mot de passe" in blocked.value.message and blocked.value.details["retry_after"] > 0
    # The password still confirms a payment, and the log-in is untouched.
    confirm.confirm(new_uow, user_id=marie.user_id, secret=PASSWORD, address="127.0.0.1")
    assert logins.seconds_to_wait(new_uow(read_only=True), marie.username, "127.0.0.1") == 0
    assert login(client, marie.username, PASSWORD).request.path == "/soliste/"


def test_wrong_login_passwords_do_not_block_the_pin(ledger, new_uow):
    marie = _with_pin(ledger, new_uow)
    for _ in range(logins.MAX_FAILURES_PER_USERNAME):
        logins.record_attempt(new_uow(), marie.username, "127.0.0.1", False)
    confirm.confirm(new_uow, user_id=marie.user_id, secret="4821", address="127.0.0.1")


# ------------------------------------------------ passwords: change, reset


ROLES = ["soliste", "prestataire", "bank", "admin", "ccas"]


def _change_password(client, current, new, again=None):
    page = client.get("/compte/mot-de-passe")
    return client.post("/compte/mot-de-passe", data={
        "csrf_token": csrf_token(page.text), "current_password": current,
        "new_password": new, "new_password_again": again or new})


@pytest.mark.parametrize("role", ROLES)
def test_every_user_changes_their_password_and_other_sessions_end(app, ledger, role):
    user = ledger.user(role, filiere="alimentation" if role == "prestataire" else None)
    here, elsewhere = app.test_client(), app.test_client()
    home = login(here, user.username, PASSWORD).request.path
    login(elsewhere, user.username, PASSWORD)
    token = here.post("/api/v1/tokens", json={"username": user.username,
                                              "password": PASSWORD}).json["token"]
    changed = _change_password(here, PASSWORD, "new-password-456")
    assert changed.status_code == 302
    assert here.get(home).status_code == 200  # this session goes on
    assert elsewhere.get(home).status_code == 302  # the others have ended
    assert here.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}
                    ).status_code == 401
    fresh = app.test_client()
    assert login(fresh, user.username, PASSWORD).status_code == 422
    assert login(fresh, user.username, "new-password-456").request.path == home


def test_a_wrong_current_password_changes_nothing_and_is_throttled(client, ledger):
    marie = ledger.soliste()
    login(client, marie.username, PASSWORD)
    short = _change_password(client, PASSWORD, "short")
    assert short.status_code == 422 and "trop court" in short.text
    mismatch = _change_password(client, PASSWORD, "new-password-456", "other-password-789")
    assert mismatch.status_code == 422
    for _ in range(logins.MAX_CONFIRM_FAILURES):
        wrong = _change_password(client, "not-my-password", "new-password-456")
        assert wrong.status_code == 403 and "Mot de passe actuel incorrect" in wrong.text
    assert _change_password(client, PASSWORD, "new-password-456").status_code == 429
    # Never counted against the log-in.
    other = type(client)(client.application)
    assert login(other, marie.username, PASSWORD).request.path == "/soliste/"


def _with_email(ledger, actor, email):
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET email = :e WHERE code = :c"),
                     {"e": email, "c": actor.party_code})


def _forgot(client, email, address="127.0.0.1"):
    page = client.get("/mot-de-passe-oublie")
    return client.post("/mot-de-passe-oublie", environ_base={"REMOTE_ADDR": address},
                       data={"csrf_token": csrf_token(page.text), "email": email},
                       follow_redirects=True)


def _reset_links(ledger):
    with ledger.engine.connect() as conn:
        bodies = conn.execute(sa.text(
            "SELECT body FROM mail_messages WHERE kind = 'password_reset' ORDER BY id"
        )).scalars().all()
    return [re.search(r"https?://\S+/mot-de-passe/(\S+)", body).group(1) for body in bodies]


def _set_password(client, token, password="brand-new-pass-1", address="127.0.0.1"):
    page = client.get(f"/mot-de-passe/{token}")
    if page.status_code != 200:
        return page
    return client.post(f"/mot-de-passe/{token}", environ_base={"REMOTE_ADDR": address},
                       data={"csrf_token": csrf_token(page.text),
                             "new_password": password, "new_password_again": password})


def test_a_forgotten_password_is_reset_once_with_the_same_answer_for_anyone(app, ledger):
    marie = ledger.soliste()
    _with_email(ledger, marie, "Marie@Example.org")
    phone = app.test_client()
    login(phone, marie.username, PASSWORD)
    known = _forgot(app.test_client(), "marie@example.org ")
    unknown = _forgot(app.test_client(), "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert "Si cette adresse" in known.text
    assert CSRF_RE.sub("", known.text) == CSRF_RE.sub("", unknown.text)
    [token] = _reset_links(ledger)
    with ledger.engine.connect() as conn:  # only the token's hash is kept
        stored = conn.execute(sa.text("SELECT token_hash FROM password_resets")).scalar_one()
    assert token not in stored and len(stored) == 64
    browser = app.test_client()
    done = _set_password(browser, token)
    assert done.status_code == 302 and done.location.endswith("/soliste/")
    assert browser.get("/soliste/").status_code == 200  # logged in
    assert phone.get("/soliste/").status_code == 302  # every other session ended
    again = _set_password(app.test_client(), token, "yet-another-pass-2")
    assert again.status_code == 410 and "plus valable" in again.text
    assert login(app.test_client(), marie.username, "brand-new-pass-1").status_code == 200


def test_a_reset_link_expires_and_a_new_password_kills_it(app, ledger):
    marie = ledger.soliste()
    _with_email(ledger, marie, "marie@example.org")
    _forgot(app.test_client(), "marie@example.org")
    _forgot(app.test_client(), "marie@example.org")
    first, second = _reset_links(ledger)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE password_resets SET created_at = :c, expires_at = :e WHERE id = "
            "(SELECT min(id) FROM password_resets)"),
            {"c": utcnow() - dt.timedelta(hours=2), "e": utcnow() - dt.timedelta(minutes=1)})
    assert _set_password(app.test_client(), first).status_code == 410
    client = app.test_client()
    login(client, marie.username, PASSWORD)
    assert _change_password(client, PASSWORD, "changed-pass-123").status_code == 302
    assert _set_password(app.test_client(), second).status_code == 410


def test_no_link_for_staff_and_no_flood_of_mail(app, ledger):
    ccas = ledger.user("ccas")
    _with_email(ledger, ccas, "ccas@example.org")
    marie = ledger.soliste()
    _with_email(ledger, marie, "marie@example.org")
    assert "Si cette adresse" in _forgot(app.test_client(), "ccas@example.org").text
    for _ in range(password_resets.MAX_PER_USER + 3):
        _forgot(app.test_client(), "marie@example.org")
    assert ledger.count("mail_messages") == password_resets.MAX_PER_USER


def test_the_link_gets_the_real_user_in_while_the_account_is_attacked(app, ledger):
    marie = ledger.soliste()
    _with_email(ledger, marie, "marie@example.org")
    attacker = app.test_client()
    for i in range(logins.MAX_FAILURES_PER_USERNAME_ANYWHERE):
        _login_from(attacker, marie.username, "wrong-password", f"203.0.113.{i + 1}")
    home = "192.0.2.77"
    assert _login_from(app.test_client(), marie.username, PASSWORD, home).status_code == 429
    _forgot(app.test_client(), "marie@example.org", address=home)
    [token] = _reset_links(ledger)
    assert _set_password(app.test_client(), token, address=home).status_code == 302
    # The address the link was used from is now known: the log-in works there.
    again = _login_from(app.test_client(), marie.username, "brand-new-pass-1", home)
    assert again.status_code == 302


def test_a_link_used_twice_at_once_works_once(ledger, new_uow):
    marie = ledger.soliste()
    _with_email(ledger, marie, "marie@example.org")
    password_resets.request_link(new_uow, email="marie@example.org", address="192.0.2.1",
                                 mailer=mail.OutboxMailer(),
                                 link_for=lambda t: f"http://x/mot-de-passe/{t}")
    [token] = _reset_links(ledger)

    def use(i):
        try:
            password_resets.use_link(new_uow, token=token, password=f"password-{i}-xyz",
                                     address="192.0.2.1")
        except password_resets.InvalidResetLink:
            return "refused"
        return "used"

    assert sorted(_run_together(8, use)) == ["refused"] * 7 + ["used"]


# ------------------------------------------------ sessions: idle time, CSRF


@pytest.fixture
def move_clock():
    """Move the ledger's clock forward; put it back after the test."""
    moves = []

    def move(delta):
        moves.append(delta)
        clock.set_clock(clock.now() + delta)

    yield move
    clock.set_clock(clock.now() - sum(moves, dt.timedelta()))


@pytest.mark.parametrize(("role", "idle_minutes", "still_in"), [
    ("soliste", 20, True), ("soliste", 61, False), ("prestataire", 61, False),
    ("bank", 16, False), ("admin", 16, False), ("ccas", 16, False), ("bank", 14, True)])
def test_sessions_end_after_the_idle_time_of_their_role(client, ledger, move_clock, role,
                                                         idle_minutes, still_in):
    user = ledger.user(role, filiere="alimentation" if role == "prestataire" else None)
    home = login(client, user.username, PASSWORD).request.path
    move_clock(dt.timedelta(minutes=idle_minutes))
    page = client.get(home)
    if still_in:
        assert page.status_code == 200
    else:
        assert page.status_code == 302 and "/connexion" in page.location
        assert "inactivité" in client.get(page.location).text


def test_the_csrf_token_is_renewed_at_login(client, ledger):
    marie = ledger.soliste()
    before = csrf_token(client.get("/connexion").text)
    page = client.post("/connexion", data={"csrf_token": before, "username": marie.username,
                                           "password": PASSWORD}, follow_redirects=True)
    after = csrf_token(page.text)
    assert after != before
    # The token of the anonymous page no longer works once logged in.
    assert client.post("/deconnexion", data={"csrf_token": before}).status_code == 400
    assert client.post("/deconnexion", data={"csrf_token": after}).status_code == 302


# ------------------------------------------------ /agrement: no username oracle


def test_the_public_form_does_not_say_a_username_is_taken_before_it_is_complete(
        app, ledger):
    taken = ledger.soliste()
    draft = post_form(app.test_client(), "/agrement", name="Le Fournil", filiere="alimentation",
                      username=taken.username, password=PASSWORD, password_confirm=PASSWORD,
                      action="save")
    assert draft.status_code == 422
    assert "Complétez d&#39;abord" in draft.text and "pas disponible" not in draft.text
    for i in range(logins.MAX_SIGNUP_REFUSALS):
        complete = post_form(app.test_client(), "/agrement",
                             **{**APPLICATION_FORM, "siret": valid_siret(10 + i),
                                "username": taken.username},
                             charter="y", action="submit")
        assert complete.status_code == 422 and "n&#39;est pas disponible" in complete.text
        assert taken.username not in complete.text.split("Identifiant de connexion")[0]
    throttled = post_form(app.test_client(), "/agrement",
                          **{**APPLICATION_FORM, "siret": valid_siret(30),
                             "username": taken.username},
                          charter="y", action="submit")
    assert throttled.status_code == 429 and "Trop d&#39;identifiants" in throttled.text
    assert ledger.count("parties WHERE kind = 'prestataire'") == 0
