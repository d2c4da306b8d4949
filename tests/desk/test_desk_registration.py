"""Registering at the desk (issue 13): once per request key, a warning for a member
already registered, and the soliste's own log-in with a one-time code."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from bousol.ledger.access import first_login, parties
from bousol.ledger.desk import members
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.errors import DomainError, IdempotencyConflict
from tests.helpers import BANK, PASSWORD, csrf_token, hammer, login


def register(ledger, actor=BANK, **overrides):
    fields = {"name": "Élodie Caron", "charter_accepted": True, "tender": "cash",
              "phone": "06 12 34 56 78", "commune": "Le Portel"}
    fields.update(overrides)
    return members.register_soliste(ledger.uow(), actor, **fields)


def solistes(ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM parties WHERE kind = 'soliste'")).scalar_one()


def fees(ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM entries WHERE kind = 'membership_fee'")).scalar_one()


@pytest.fixture
def clerk(ledger):
    return ledger.user("bank")


# ------------------------------------------------------------------ once per key


def test_the_same_key_twice_registers_once(ledger, clerk):
    first = register(ledger, clerk, idempotency_key="reg-1")
    again = register(ledger, clerk, idempotency_key="reg-1")
    assert again.party_code == first.party_code and again.entry_id == first.entry_id
    assert first.first_code and not first.replayed
    assert again.replayed and again.first_code is None  # the code is never stored
    assert solistes(ledger) == 1 and fees(ledger) == 1
    assert ledger.system("fees_income") == 300
    with pytest.raises(IdempotencyConflict):  # the same key for another person
        register(ledger, clerk, idempotency_key="reg-1", name="Karim Benali")
    ledger.assert_consistent()


def test_two_concurrent_posts_with_one_key_register_once(ledger, clerk):
    outcomes = hammer(lambda _i: register(ledger, clerk, idempotency_key="double-click"),
                      threads=4)
    assert {o.party_code for o in outcomes} == {outcomes[0].party_code}
    assert sum(1 for o in outcomes if o.first_code) == 1  # one sheet shows the code
    assert solistes(ledger) == 1 and fees(ledger) == 1
    assert ledger.count("first_password_codes") == 1
    ledger.assert_consistent()


def test_two_people_of_one_name_registered_at_once_get_two_usernames(ledger, clerk):
    outcomes = hammer(lambda i: register(ledger, clerk, idempotency_key=f"k{i}",
                                         phone=f"06000000{i:02d}"), threads=4)
    names = sorted(o.username for o in outcomes)
    assert len(set(names)) == 4 and names[0] == "elodie.caron"
    assert solistes(ledger) == 4 and fees(ledger) == 4


# ------------------------------------------------------------------ already a member?


@pytest.mark.parametrize("same", ["phone", "birth_date"])
def test_a_member_with_the_same_name_and_phone_or_birth_date_is_named(ledger, clerk, same):
    born = clock.paris_today().replace(year=1980, day=1)
    first = register(ledger, clerk, birth_date=born, phone="06 12 34 56 78")
    other = {"phone": "06 12 34 56 78", "birth_date": None} if same == "phone" \
        else {"phone": "07 00 00 00 00", "birth_date": born.strftime("%d/%m/%Y")}
    with pytest.raises(members.PossibleDuplicate) as warned:
        register(ledger, clerk, name="CARON  élodie", idempotency_key="second", **other)
    assert warned.value.code == "possible_duplicate" and warned.value.http_status == 409
    assert warned.value.details["codes"] == [first.party_code]
    assert solistes(ledger) == 1 and fees(ledger) == 1  # nothing written
    went_on = register(ledger, clerk, name="CARON  élodie", idempotency_key="go-on",
                       allow_duplicate=True, **other)
    assert went_on.party_code != first.party_code and solistes(ledger) == 2


def test_the_same_name_alone_is_no_duplicate(ledger, clerk):
    register(ledger, clerk)
    register(ledger, clerk, phone="07 11 22 33 44")
    register(ledger, clerk, phone=None)
    assert solistes(ledger) == 3


@pytest.mark.parametrize("text", ["31/02/1990", "1899-12-31", "demain", "01/01/3000"])
def test_a_bad_birth_date_is_refused(ledger, clerk, text):
    with pytest.raises(DomainError) as refused:
        register(ledger, clerk, birth_date=text)
    assert refused.value.details["field"] == "birth_date" and solistes(ledger) == 0


def test_the_database_refuses_a_birth_date_before_1900(ledger, clerk):
    done = register(ledger, clerk)
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET birth_date = '1850-01-01' WHERE code = :c"),
                     {"c": done.party_code})


# ------------------------------------------------------------------ the member's log-in


def _login(ledger, username, password):
    return parties.authenticate(ledger.uow(read_only=True), username, password)


def test_registration_makes_a_login_whose_password_nobody_knows(ledger, clerk):
    done = register(ledger, clerk)
    assert done.username == "elodie.caron"
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT u.role, p.code, c.code_hash FROM users u JOIN parties p "
            "ON p.id = u.party_id JOIN first_password_codes c ON c.user_id = u.id "
            "WHERE u.username = :u"), {"u": done.username}).one()
    assert (row.role, row.code) == ("soliste", done.party_code)
    assert row.code_hash == first_login.code_hash(done.first_code)  # only its hash
    assert done.first_code not in row.code_hash
    assert _login(ledger, done.username, "") is None
    assert done.code_expires_on == (clock.now() + first_login.CODE_TTL).date()


def test_the_code_sets_the_first_password_once(ledger, clerk):
    done = register(ledger, clerk)
    typed = done.first_code.lower().replace("-", " ")  # typed loosely
    first_login.set_first_password(ledger.uow(), username=" Elodie.Caron ", code=typed,
                                   password="mon-beau-bousol")
    assert _login(ledger, done.username, "mon-beau-bousol") is not None
    with pytest.raises(first_login.InvalidFirstCode):  # single use
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=done.first_code, password="un-autre-mot")
    assert _login(ledger, done.username, "mon-beau-bousol") is not None
    with pytest.raises(first_login.PasswordAlreadyChosen):  # nobody takes it over
        first_login.reissue(ledger.uow(), clerk, done.party_code)


def test_five_wrong_codes_kill_the_code(ledger, clerk):
    done = register(ledger, clerk)
    for _ in range(first_login.MAX_FAILURES):
        with pytest.raises(first_login.InvalidFirstCode):
            first_login.set_first_password(ledger.uow(), username=done.username,
                                           code="AAAA-AAAA-AAAA", password="mon-beau-bousol")
    with pytest.raises(first_login.InvalidFirstCode):  # even the right one now
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=done.first_code, password="mon-beau-bousol")
    new = first_login.reissue(ledger.uow(), clerk, done.party_code)  # the desk helps
    first_login.set_first_password(ledger.uow(), username=done.username, code=new.code,
                                   password="mon-beau-bousol")
    assert _login(ledger, done.username, "mon-beau-bousol") is not None


def test_an_expired_code_is_refused_and_a_new_one_revokes_the_old(ledger, clerk):
    done = register(ledger, clerk)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE first_password_codes SET created_at = :c, "
                             "expires_at = :e"),
                     {"c": clock.now() - dt.timedelta(days=31),
                      "e": clock.now() - dt.timedelta(seconds=1)})
    with pytest.raises(first_login.InvalidFirstCode):
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=done.first_code, password="mon-beau-bousol")
    one = first_login.reissue(ledger.uow(), clerk, done.party_code)
    two = first_login.reissue(ledger.uow(), clerk, done.party_code)
    with pytest.raises(first_login.InvalidFirstCode):  # the previous one is revoked
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=one.code, password="mon-beau-bousol")
    first_login.set_first_password(ledger.uow(), username=done.username, code=two.code,
                                   password="mon-beau-bousol")


def test_a_short_password_is_refused_and_the_code_still_works(ledger, clerk):
    done = register(ledger, clerk)
    with pytest.raises(DomainError) as refused:
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=done.first_code, password="court")
    assert refused.value.code == "invalid_input"
    first_login.set_first_password(ledger.uow(), username=done.username,
                                   code=done.first_code, password="mon-beau-bousol")


def test_two_uses_of_one_code_at_once_set_one_password(ledger, clerk):
    done = register(ledger, clerk)

    def use(i):
        try:
            first_login.set_first_password(ledger.uow(), username=done.username,
                                           code=done.first_code, password=f"secret-{i}-ok")
            return i
        except first_login.InvalidFirstCode:
            return None

    winners = [i for i in hammer(use, threads=4) if i is not None]
    assert len(winners) == 1
    assert _login(ledger, done.username, f"secret-{winners[0]}-ok") is not None


def test_only_the_desk_reissues_and_only_for_a_soliste(ledger, clerk):
    done = register(ledger, clerk)
    marie = ledger.soliste()
    with pytest.raises(DomainError) as refused:
        first_login.reissue(ledger.uow(), marie, done.party_code)
    assert refused.value.code == "forbidden"
    with pytest.raises(first_login.PasswordAlreadyChosen):  # made with a password
        first_login.reissue(ledger.uow(), clerk, marie.party_code)


# ------------------------------------------------------------------ web


@pytest.fixture
def desk(client, ledger, clerk):
    login(client, clerk.username, PASSWORD)
    return clerk


def _form(client):
    page = client.get("/comptoir/adherents/nouveau")
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', page.text)
    assert key, "the form carries a request key from the start"
    return {"csrf_token": csrf_token(page.text), "name": "Élodie Caron",
            "phone": "06 12 34 56 78", "email": "", "address": "", "commune": "Le Portel",
            "birth_date": "", "charter": "y", "tender": "cash",
            "request_key": key.group(1)}


def _sheet_code(html: str) -> str | None:
    found = re.search(r'data-testid="first-code">([A-Z0-9-]+)<', html)
    return found.group(1) if found else None


def test_a_double_post_of_the_form_registers_once(client, ledger, desk):
    fields = _form(client)
    first = client.post("/comptoir/adherents/nouveau", data=fields)
    again = client.post("/comptoir/adherents/nouveau", data=fields)
    assert first.status_code == again.status_code == 200
    assert _sheet_code(first.text) and _sheet_code(again.text) is None
    assert 'data-testid="no-code"' in again.text  # and a button for a new code
    assert solistes(ledger) == 1 and fees(ledger) == 1
    code = re.search(r'data-testid="member-code">(S-[0-9]{6})<', again.text).group(1)
    reprint = client.post(f"/comptoir/adherents/{code}/premier-code",
                          data={"csrf_token": csrf_token(again.text)})
    new_code = _sheet_code(reprint.text)
    assert reprint.status_code == 200 and new_code and new_code != _sheet_code(first.text)
    assert client.post(f"/comptoir/adherents/{code}/premier-code").status_code == 400


def test_the_desk_warns_of_a_member_already_registered(client, ledger, desk):
    existing = register(ledger, desk, name="Elodie CARON")
    fields = _form(client)
    warned = client.post("/comptoir/adherents/nouveau", data=fields)
    assert warned.status_code == 409
    assert 'data-testid="possible-duplicate"' in warned.text
    assert f'href="/comptoir/change/{existing.party_code}"' in warned.text
    assert "Elodie CARON" in warned.text and solistes(ledger) == 1
    go_on = dict(fields, csrf_token=csrf_token(warned.text), go_on="1",
                 request_key=re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"',
                                       warned.text).group(1))
    assert go_on["request_key"] != fields["request_key"]
    done = client.post("/comptoir/adherents/nouveau", data=go_on)
    again = client.post("/comptoir/adherents/nouveau", data=go_on)
    assert done.status_code == again.status_code == 200 and _sheet_code(done.text)
    assert solistes(ledger) == 2 and fees(ledger) == 2


def test_the_soliste_sets_a_password_then_logs_in(app, client, ledger, desk):
    sheet = client.post("/comptoir/adherents/nouveau", data=_form(client))
    code, username = _sheet_code(sheet.text), re.search(
        r'data-testid="username">([^<]+)<', sheet.text).group(1)
    assert "/premier-mot-de-passe" in sheet.text
    member = app.test_client()
    page = member.get("/premier-mot-de-passe")
    assert page.status_code == 200
    wrong = member.post("/premier-mot-de-passe", data={
        "csrf_token": csrf_token(page.text), "username": username, "code": "ZZZZ-ZZZZ-ZZZZ",
        "password": "mon-beau-bousol", "confirm": "mon-beau-bousol"})
    assert wrong.status_code == 422 and "code incorrect" in wrong.text
    done = member.post("/premier-mot-de-passe", data={
        "csrf_token": csrf_token(page.text), "username": username, "code": code,
        "password": "mon-beau-bousol", "confirm": "mon-beau-bousol"})
    assert done.status_code == 302 and "/connexion" in done.location
    home = login(member, username, "mon-beau-bousol")
    assert home.status_code == 200 and "Élodie Caron" in home.text


@pytest.mark.parametrize("codes_revoked", [False, True])
def test_a_password_chosen_by_reset_link_ends_the_desk_codes(ledger, clerk, new_uow,
                                                              codes_revoked):
    """The member never used the sheet's code and reset the password by e-mail: then
    neither the sheet nor a clerk asking for a new code can set another password."""
    from bousol.ledger.access import password_resets
    from bousol.ledger.kernel import mail

    done = register(ledger, clerk, email="elodie@example.org")
    if codes_revoked:  # five wrong tries killed the printed code first
        with ledger.engine.begin() as conn:
            conn.execute(sa.text("UPDATE first_password_codes SET revoked_at = :t"),
                         {"t": clock.now()})
    sent: list[str] = []
    password_resets.request_link(new_uow, email="elodie@example.org", address="192.0.2.9",
                                 mailer=mail.OutboxMailer(),
                                 link_for=lambda t: sent.append(t) or f"http://x/{t}")
    assert len(sent) == 1
    password_resets.use_link(new_uow, token=sent[0], password="elodie-choisit-1",
                             address="192.0.2.9")
    with pytest.raises(first_login.InvalidFirstCode):  # the sheet's code is dead
        first_login.set_first_password(ledger.uow(), username=done.username,
                                       code=done.first_code, password="le-guichet-1")
    with pytest.raises(first_login.PasswordAlreadyChosen):  # and no clerk may print one
        first_login.reissue(ledger.uow(), clerk, done.party_code)


def test_a_registration_refused_on_a_closed_day_goes_through_once_reopened(client, ledger,
                                                                          desk):
    """The refusal is remembered under its key; the page sent back carries a new one, so
    the same form sent again after an admin reopened the day registers the member."""
    from bousol.ledger.desk import closing

    closed = closing.close_day(ledger.uow(), desk, counts={})
    fields = _form(client)
    refused = client.post("/comptoir/adherents/nouveau", data=fields)
    assert refused.status_code in (409, 422) and solistes(ledger) == 0
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', refused.text)
    assert key and key.group(1) != fields["request_key"]
    closing.reopen_day(ledger.uow(), ledger.user("admin"), closing_id=closed.closing_id,
                       reason="Clôturée par erreur")
    again = client.post("/comptoir/adherents/nouveau",
                        data={**fields, "request_key": key.group(1)})
    assert again.status_code == 200 and _sheet_code(again.text) and solistes(ledger) == 1
