"""The cash closing of the exchange desk: expected against counted, the difference
booked and never hidden, the takings handed to the reserve, a closed day closed."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import sqlalchemy as sa

from bousol.ledger.books import operations
from bousol.ledger.desk import closing, members
from bousol.ledger.kernel.errors import DomainError
from tests.helpers import BANK, PASSWORD, csrf_token, login

DAY = dt.date(2024, 3, 11)  # in the past: the real clock never finds it still open
NEXT_DAY = dt.date(2024, 3, 12)


def _expected(ledger, today=DAY):
    with ledger.uow(read_only=True) as uow:
        return closing.expected(uow.conn, today=today)


def _close(ledger, counts, today=DAY, **kw):
    kw.setdefault("float_kept", "0")
    return closing.close_day(ledger.uow(), BANK, counts=counts, today=today, **kw)


def _register(ledger, tender, today=DAY):
    return members.register_soliste(ledger.uow(), BANK, name=f"Adhérent {tender}",
                                    charter_accepted=True, tender=tender, today=today)


def _entries(ledger, kind):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM entries WHERE kind = :k ORDER BY id"),
                            {"k": kind}).scalars().all()


def _postings(ledger, entry_id):
    with ledger.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT a.system_code, p.amount FROM postings p JOIN accounts a "
            "ON a.id = p.account_id WHERE p.entry_id = :e"), {"e": entry_id}).all())


def _shows_the_loss(ledger, euros):
    """A shortfall of backed euros is not hidden: verify reports the coverage short by
    exactly that much (until the association tops the reserve up), and nothing else."""
    failed = [c for c in ledger.verify().checks if not c.ok]
    assert [(c.name, c.problems) for c in failed] == [
        ("couverture en euros", [f"il manque {euros} €"])]


@pytest.fixture
def marie(ledger):
    ledger.subsidy("100.00")
    return ledger.soliste(name="Marie Lefebvre")


@pytest.fixture
def busy_day(ledger, marie):
    """A day at the desk: every tender, fees, a mid-day remise, a reversal."""
    ledger.exchange(marie, "40.00", tender="cash")
    ledger.exchange(marie, "25.50", tender="cheque")
    ledger.exchange(marie, "30.00", tender="card")
    ledger.exchange(marie, "50.00", tender="transfer")  # not the desk's
    for tender in ("cash", "cheque", "card"):
        _register(ledger, tender)  # 3,00 € each
    operations.bank_desk_cash(ledger.uow(), BANK, euros="20.00")
    mistake = ledger.exchange(marie, "10.00", tender="cash")
    ledger.reverse(mistake.entry_id)  # the 10 € handed back
    return marie


def test_expected_figures_after_a_series_of_operations(ledger, busy_day):
    exp = _expected(ledger)
    assert exp.float_cents == 0 and exp.previous_date is None and exp.after_entry_id == 0
    assert exp.received == {"cash": {"exchanges": 4000, "fees": 300},
                            "cheque": {"exchanges": 2550, "fees": 300},
                            "card": {"exchanges": 3000, "fees": 300}}
    assert exp.deposited_cents == 2000 and exp.other_desk_cents == 0
    assert exp.cash_cents == 4300 - 2000  # float + cash received − handed to the reserve
    assert exp.cheque_cents == 2850 and exp.cheque_entries == 2
    assert exp.card_cents == 3300
    # desk_cash holds the exchanges' cash and cheques, not the fees (fees_income has them)
    assert exp.desk_cash_balance == ledger.system("desk_cash") == 4000 + 2550 - 2000
    assert exp.consistent


def test_the_days_closing_reconciles(ledger, busy_day):
    reserve_before = ledger.system("eur_reserve")
    fees_before = ledger.system("fees_income")
    # 23,00 € in cash: a 20 € note, a 2 € coin, two 50 c coins; keep 5 € for tomorrow.
    result = _close(ledger, {2000: 1, 200: 1, 50: 2}, cheque_count=2, cheque_total="28,50",
                    card_total="33.00", float_kept="5")
    assert result.discrepancy_cents == 0 and result.discrepancy_entry_id is None
    assert _entries(ledger, "cash_discrepancy") == []
    # counted (23,00 + 28,50) − float 5,00 − fees in the drawer (3,00 + 3,00) = 40,50
    assert result.deposited_cents == 4050
    assert ledger.system("desk_cash") == 500  # exactly the float kept
    assert ledger.system("eur_reserve") == reserve_before + 4050
    assert ledger.system("fees_income") == fees_before
    assert _postings(ledger, result.deposit_entry_id) == {"desk_cash": -4050,
                                                          "eur_reserve": 4050}
    ledger.assert_consistent()
    with ledger.uow(read_only=True) as uow:
        (row,) = closing.history(uow.conn)
    assert (row.business_date, row.expected_cash_cents, row.counted_cash_cents) == (
        DAY, 2300, 2300)
    assert (row.cheque_count, row.counted_card_cents, row.float_cents) == (2, 3300, 500)
    assert row.last_entry_id == result.deposit_entry_id


def test_shortfall_with_comment_is_booked(ledger, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    _register(ledger, "cash")
    result = _close(ledger, {2000: 1, 1000: 1, 500: 1, 200: 2, 20: 4}, comment="Erreur de rendu")
    assert result.discrepancy_cents == -320  # 39,80 counted for 43,00 expected
    assert _entries(ledger, "cash_discrepancy") == [result.discrepancy_entry_id]
    assert _postings(ledger, result.discrepancy_entry_id) == {"desk_cash": -320,
                                                              "cash_discrepancy": 320}
    assert ledger.system("cash_discrepancy") == 320
    assert result.deposited_cents == 4000 - 320 and ledger.system("desk_cash") == 0
    _shows_the_loss(ledger, "3.20")


def test_shortfall_without_comment_writes_nothing(ledger, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    entries = ledger.count("entries")
    for comment in (None, "   "):
        with pytest.raises(closing.CommentRequired) as refused:
            _close(ledger, {2000: 1}, comment=comment)
        assert refused.value.code == "comment_required"
    assert ledger.count("entries") == entries and ledger.count("cash_closings") == 0
    assert ledger.system("desk_cash") == 4000


def test_surplus_is_booked_too(ledger, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    result = _close(ledger, {2000: 2, 100: 1}, comment="Pièce trouvée", float_kept="1")
    assert result.discrepancy_cents == 100
    assert _postings(ledger, result.discrepancy_entry_id) == {"desk_cash": 100,
                                                              "cash_discrepancy": -100}
    assert result.deposited_cents == 4000 and ledger.system("desk_cash") == 100
    ledger.assert_consistent()


def test_shortfall_beyond_desk_cash_falls_on_the_fees(ledger, marie):
    for _ in range(3):
        _register(ledger, "cash")  # 9,00 € of fees in the drawer, desk_cash empty
    result = _close(ledger, {500: 1}, comment="Billet de 5 € perdu ?")
    assert _postings(ledger, result.discrepancy_entry_id) == {"fees_income": -400,
                                                              "cash_discrepancy": 400}
    assert result.deposited_cents == 0 and result.deposit_entry_id is None
    assert ledger.system("desk_cash") == 0 and ledger.system("fees_income") == 500
    ledger.assert_consistent()


def test_card_difference_is_booked_against_the_reserve(ledger, marie):
    ledger.exchange(marie, "30.00", tender="card")
    reserve = ledger.system("eur_reserve")
    result = _close(ledger, {}, card_total="29", comment="Ticket du terminal à vérifier")
    assert result.discrepancy_cents == -100
    assert _postings(ledger, result.discrepancy_entry_id) == {"eur_reserve": -100,
                                                              "cash_discrepancy": 100}
    assert ledger.system("eur_reserve") == reserve - 100
    _shows_the_loss(ledger, "1.00")


def test_the_float_cannot_be_more_than_the_cash_nor_the_fees(ledger, marie):
    _register(ledger, "cash")
    with pytest.raises(closing.FloatTooLarge):
        _close(ledger, {200: 1, 100: 1}, float_kept="3.01")
    with pytest.raises(closing.FloatTooLarge):  # the 3 € are the association's fee
        _close(ledger, {200: 1, 100: 1}, float_kept="3")
    assert ledger.count("cash_closings") == 0


@pytest.mark.parametrize("counts", [{300: 1}, {100: -1}, {100: 100_001}, {100: 1.0},
                                    {100: "abc"}, {100: True}, {"x": 1}])
def test_bad_counts_are_refused(ledger, counts):
    with pytest.raises(DomainError) as refused:
        _close(ledger, counts)
    assert refused.value.code == "invalid_input"


@pytest.mark.parametrize("amount", ["abc", "-1", "1,234", 1.5])
def test_bad_amounts_are_refused(ledger, amount):
    with pytest.raises(DomainError) as refused:
        _close(ledger, {}, cheque_total=amount)
    assert refused.value.code == "invalid_amount"


def test_a_day_closes_once(ledger, marie):
    ledger.exchange(marie, "20.00", tender="cash")
    _close(ledger, {2000: 1})
    entries = ledger.count("entries")
    with pytest.raises(closing.DayClosed) as refused:
        _close(ledger, {})
    assert refused.value.code == "day_closed" and refused.value.http_status == 409
    with pytest.raises(closing.DayClosed):  # nor an earlier day after it
        _close(ledger, {}, today=DAY - dt.timedelta(days=1))
    assert ledger.count("entries") == entries and ledger.count("cash_closings") == 1


def test_a_closed_day_takes_no_more_cash(ledger, marie, monkeypatch):
    monkeypatch.setattr(closing, "business_today", lambda: DAY)
    _close(ledger, {})
    for tender in ("cash", "cheque", "card"):
        with pytest.raises(closing.DayClosed):
            ledger.exchange(marie, "10.00", tender=tender)
    with pytest.raises(closing.DayClosed):
        _register(ledger, "cash")
    assert ledger.balance(marie) == 0
    ledger.exchange(marie, "10.00", tender="transfer")  # a bank transfer still arrives
    assert ledger.balance(marie) == 1050
    monkeypatch.setattr(closing, "business_today", lambda: NEXT_DAY)
    ledger.exchange(marie, "10.00", tender="cash")  # the next morning


def test_next_day_starts_from_the_float_and_the_cutoff(ledger, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    first = _close(ledger, {2000: 2}, float_kept="20")
    ledger.exchange(marie, "15.00", tender="cash")
    ledger.exchange(marie, "5.00", tender="card")
    exp = _expected(ledger, NEXT_DAY)
    assert exp.previous_date == DAY and exp.after_entry_id == first.deposit_entry_id
    assert exp.float_cents == 2000 and exp.deposited_cents == 0  # day 1's remise is past
    assert exp.cash_cents == 3500 and exp.card_cents == 500 and exp.consistent
    second = _close(ledger, {2000: 1, 1000: 1, 500: 1}, card_total="5", today=NEXT_DAY)
    assert second.discrepancy_cents == 0 and second.deposited_cents == 3500
    assert ledger.system("desk_cash") == 0
    with ledger.uow(read_only=True) as uow:
        assert [r.business_date for r in closing.history(uow.conn)] == [NEXT_DAY, DAY]
    ledger.assert_consistent()


def test_a_reversal_counts_on_the_day_it_is_made(ledger, marie):
    yesterday = ledger.exchange(marie, "20.00", tender="cheque")
    _close(ledger, {}, cheque_total="20", cheque_count=1)
    ledger.exchange(marie, "50.00", tender="cash")
    ledger.reverse(yesterday.entry_id)  # the cheque bounced: the bank takes it back
    exp = _expected(ledger, NEXT_DAY)
    assert exp.received["cheque"]["exchanges"] == -2000 and exp.cheque_entries == -1
    assert exp.desk_cash_balance == 5000 - 2000 and exp.consistent


def test_a_closing_cannot_be_changed(ledger, marie):
    _close(ledger, {})
    for statement in ("UPDATE cash_closings SET float_cents = 100",
                      "DELETE FROM cash_closings"):
        with pytest.raises(sa.exc.DBAPIError), ledger.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert ledger.count("cash_closings") == 1


def test_expected_figures_must_not_have_moved_since_the_check(ledger, marie):
    exp = _expected(ledger)
    ledger.exchange(marie, "10.00", tender="cash")
    with pytest.raises(closing.ExpectedChanged):
        _close(ledger, {1000: 1},
               seen=(exp.cash_cents, exp.cheque_cents, exp.card_cents))
    assert ledger.count("cash_closings") == 0


def test_only_the_bank_closes(ledger, marie):
    with pytest.raises(DomainError) as refused:
        closing.close_day(ledger.uow(), marie, counts={}, today=DAY)
    assert refused.value.code == "forbidden"


# ------------------------------------------------------------------ web


@pytest.fixture
def desk(client, ledger, marie, monkeypatch):
    monkeypatch.setattr(closing, "business_today", lambda: DAY)
    clerk = ledger.user("bank")
    login(client, clerk.username, PASSWORD)
    return clerk


def _count(client, **fields):
    page = client.get("/comptoir/cloture")
    data = {"csrf_token": csrf_token(page.text)}
    data.update(fields)
    return client.post("/comptoir/cloture", data=data)


def _confirm(client, check, **extra):
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                             check.text))
    fields["csrf_token"] = csrf_token(check.text)
    fields.update(confirm="1", **extra)
    return client.post("/comptoir/cloture", data=fields), fields


def test_closing_page_shows_what_is_expected(client, ledger, desk, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    _register(ledger, "cash")
    page = client.get("/comptoir/cloture")
    assert page.status_code == 200
    for text in ("Billets de 50\u00a0€", "Pièces de 2\u00a0€", "Pièces de 50 centimes",
                 "Vérifier", "43,00\u00a0€", "Concordant"):
        assert text in page.text.replace("Billets de 50 €", "Billets de 50\u00a0€") \
            .replace("Pièces de 2 €", "Pièces de 2\u00a0€"), text
    assert 'inputmode="numeric"' in page.text
    assert client.get("/comptoir/").text.count("Clôture de caisse") >= 1


def test_only_staff_see_the_closing(app, ledger, desk, marie):
    other = app.test_client()
    login(other, marie.username, PASSWORD)
    assert other.get("/comptoir/cloture").status_code == 403
    assert other.get("/comptoir/clotures").status_code == 403


def test_a_full_closing_through_the_form(client, ledger, desk, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    ledger.exchange(marie, "12.50", tender="cheque")
    check = _count(client, d2000="1", d1000="1", d500="1", d100="1", d20="4",
                   cheque_count="1", cheque_total="12,50", card_total="", float_kept="10")
    assert check.status_code == 200
    assert "Il manque 3,20\u00a0€" in check.text  # 36,80 in cash counted for 40,00
    assert ledger.count("cash_closings") == 0  # nothing before "Clôturer la journée"
    refused, fields = _confirm(client, check)
    assert refused.status_code == 422 and "expliquez" in refused.text
    assert 'aria-describedby="comment-error"' in refused.text
    done, fields = _confirm(client, refused, comment="Erreur de rendu")
    assert done.status_code == 302 and "/comptoir/cloture/" in done.location
    again = client.post("/comptoir/cloture", data=fields)  # a second click
    assert again.status_code == 302 and again.location == done.location
    assert ledger.count("cash_closings") == 1
    assert ledger.system("desk_cash") == 1000 and ledger.system("cash_discrepancy") == 320
    report = client.get(done.location)
    assert report.status_code == 200
    for text in ("Rapport de clôture de caisse", "11/03/2024", "Il manque 3,20\u00a0€",
                 "Erreur de rendu", "Billets de 20"):
        assert text in report.text, text
    def article(html):
        return re.search(r'<article class="receipt.*?</article>', html, re.S).group(0)

    assert article(client.get(done.location).text) == article(report.text)  # a reprint
    assert "Journée clôturée" in client.get("/comptoir/").text
    assert client.get("/comptoir/cloture").status_code == 302  # to today's report
    listing = client.get("/comptoir/clotures")
    assert "Rapport du 11/03/2024" in listing.text
    _shows_the_loss(ledger, "3.20")


def test_a_closed_desk_says_so_and_refuses_cash(client, ledger, desk, marie):
    _close(ledger, {})
    page = client.get(f"/comptoir/change/{marie.party_code}")
    assert "Journée clôturée" in page.text
    preview = client.post(f"/comptoir/change/{marie.party_code}", data={
        "csrf_token": csrf_token(page.text), "euros": "10", "tender": "cash"})
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', preview.text)
    refused = client.post(f"/comptoir/change/{marie.party_code}", data={
        "csrf_token": csrf_token(preview.text), "euros": "10", "tender": "cash",
        "request_key": key.group(1), "confirm": "1"})
    assert refused.status_code == 409 and "clôturée" in refused.text
    assert ledger.balance(marie) == 0


def test_bad_counts_are_form_errors(client, ledger, desk):
    response = _count(client, d100="abc", cheque_total="x", float_kept="")
    assert response.status_code == 422
    assert 'aria-describedby="d100-error"' in response.text
    assert 'aria-describedby="cheque_total-error"' in response.text
    too_big = _count(client, d100="2", float_kept="3")
    assert too_big.status_code == 422 and "fonds de caisse" in too_big.text.lower()
    assert ledger.count("cash_closings") == 0


def test_report_of_nothing_is_not_found(client, desk):
    assert client.get("/comptoir/cloture/999").status_code == 404


# ------------------------------------------------------------------ reopening (issue 13)

ADMIN_REASON = "Clôturée à 15 h par erreur, le guichet reste ouvert jusqu'à 18 h."


def _reopen(ledger, closing_id, actor=None, today=DAY, reason=ADMIN_REASON):
    admin = actor or ledger.user("admin")
    return closing.reopen_day(ledger.uow(), admin, closing_id=closing_id, reason=reason,
                              today=today)


@pytest.mark.parametrize(("state", "action", "after"), [
    ("open", "close", "closed"),
    ("closed", "reopen", "open"),
    ("closed", "close", closing.DayClosed),
    ("open", "reopen", closing.ClosingNotReopenable),
])
def test_the_days_states(state, action, after):
    if isinstance(after, str):
        assert closing.next_state(state, action) == after
    else:
        with pytest.raises(after):
            closing.next_state(state, action)


def test_a_day_closed_by_mistake_is_reopened_then_closed_again(ledger, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    first = _close(ledger, {2000: 1, 1000: 1}, comment="compté trop tôt")  # 10 € short
    assert first.discrepancy_entry_id and first.deposit_entry_id
    reserve = ledger.system("eur_reserve")
    done = _reopen(ledger, first.closing_id)
    assert len(done.reversal_entry_ids) == 2
    # Both entries of the closing are reversed: the drawer is as before the count.
    assert ledger.system("desk_cash") == 4000
    assert ledger.system("eur_reserve") == reserve - first.deposited_cents
    with ledger.uow(read_only=True) as uow:
        assert closing.day_state(uow.conn, DAY) == "open"
        assert closing.for_date(uow.conn, DAY) is None
    ledger.exchange(marie, "20.00", tender="cash")  # the desk takes money again
    exp = _expected(ledger)
    assert exp.cash_cents == 6000 and exp.consistent and exp.previous_date is None
    second = _close(ledger, {2000: 3})
    assert second.discrepancy_cents == 0 and second.deposited_cents == 6000
    with ledger.uow(read_only=True) as uow:
        rows = closing.history(uow.conn)
        assert closing.for_date(uow.conn, DAY) == second.closing_id
    assert [(r.sequence, r.reopen_reason) for r in rows] == [(2, None), (1, ADMIN_REASON)]
    assert rows[1].reopened_by.startswith("admin")
    ledger.assert_consistent()


def test_only_an_admin_reopens_with_a_reason(ledger, marie):
    first = _close(ledger, {})
    for actor in (BANK, marie):
        with pytest.raises(DomainError) as refused:
            _reopen(ledger, first.closing_id, actor=actor)
        assert refused.value.code == "forbidden"
    for reason in ("", "  ", "ok", "x" * 501, "raison\x00"):
        with pytest.raises(DomainError) as refused:
            _reopen(ledger, first.closing_id, reason=reason)
        assert refused.value.code == "invalid_input"
    assert ledger.count("cash_closing_reopenings") == 0


def test_only_todays_last_closing_reopens_once(ledger, marie):
    first = _close(ledger, {})
    with pytest.raises(closing.ClosingNotReopenable):  # yesterday's, seen the next day
        _reopen(ledger, first.closing_id, today=NEXT_DAY)
    _reopen(ledger, first.closing_id)
    with pytest.raises(closing.ClosingNotReopenable):
        _reopen(ledger, first.closing_id)
    with pytest.raises(closing.UnknownClosing):
        _reopen(ledger, 999)
    assert ledger.count("cash_closing_reopenings") == 1
    with pytest.raises(sa.exc.DBAPIError), ledger.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM cash_closing_reopenings"))  # append-only


def test_two_admins_reopening_at_once_reopen_once(ledger, marie, engine):
    ledger.exchange(marie, "40.00", tender="cash")
    first = _close(ledger, {2000: 2}, float_kept="0")
    admins = [ledger.user("admin"), ledger.user("admin")]
    barrier = threading.Barrier(2)
    outcomes = []

    def run(admin):
        barrier.wait()
        try:
            _reopen(ledger, first.closing_id, actor=admin)
            outcomes.append("ok")
        except closing.ClosingNotReopenable:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(a,)) for a in admins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused"]
    assert ledger.count("cash_closing_reopenings") == 1
    assert len(_entries(ledger, "reversal")) == 1  # the deposit, reversed once
    assert ledger.system("desk_cash") == 4000
    ledger.assert_consistent()


def test_the_desks_home_says_the_day_is_closed_before_any_form(client, ledger, desk):
    home = client.get("/comptoir/")
    assert 'data-testid="desk-day-closed"' not in home.text
    closing.close_day(ledger.uow(), desk, counts={}, today=DAY)
    home = client.get("/comptoir/")
    banner = re.search(r'data-testid="desk-day-closed">([^<]+)', home.text)
    assert banner and "Journée du 11/03/2024 clôturée" in banner.group(1)
    assert desk.username in banner.group(1)
    renewal = client.get(f"/comptoir/adherents/{_register_before(ledger)}/cotisation")
    assert "Journée clôturée" in renewal.text  # the form says it before it is filled


def _register_before(ledger):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT code FROM parties WHERE kind = 'soliste' ORDER BY id LIMIT 1")).scalar_one()


def test_an_admin_reopens_the_day_through_the_page(app, client, ledger, desk, marie):
    ledger.exchange(marie, "40.00", tender="cash")
    done = _close(ledger, {2000: 2})
    report = client.get(f"/comptoir/cloture/{done.closing_id}")
    assert 'data-testid="reopen-link"' not in report.text  # not for the clerk
    assert client.get(f"/comptoir/cloture/{done.closing_id}/reouverture").status_code == 403
    admin = ledger.user("admin")
    boss = app.test_client()
    login(boss, admin.username, PASSWORD)
    report = boss.get(f"/comptoir/cloture/{done.closing_id}")
    assert 'data-testid="reopen-link"' in report.text
    page = boss.get(f"/comptoir/cloture/{done.closing_id}/reouverture")
    assert page.status_code == 200 and "40,00\u00a0€" in page.text
    empty = boss.post(f"/comptoir/cloture/{done.closing_id}/reouverture",
                      data={"csrf_token": csrf_token(page.text), "reason": ""})
    assert empty.status_code == 422 and ledger.count("cash_closing_reopenings") == 0
    fields = {"csrf_token": csrf_token(page.text), "reason": ADMIN_REASON}
    reopened = boss.post(f"/comptoir/cloture/{done.closing_id}/reouverture", data=fields,
                         follow_redirects=True)
    assert "rouverte" in reopened.text and ADMIN_REASON.replace("'", "&#39;") in reopened.text
    again = boss.post(f"/comptoir/cloture/{done.closing_id}/reouverture", data=fields,
                      follow_redirects=True)
    assert again.status_code == 200 and "peut être rouverte" in again.text  # once
    assert ledger.count("cash_closing_reopenings") == 1
    assert 'data-testid="desk-day-closed"' not in client.get("/comptoir/").text
    listing = client.get("/comptoir/clotures")
    assert "rouverte" in listing.text
    # The audit trail has the reopening, under the admin's name.
    with ledger.engine.connect() as conn:
        found = conn.execute(sa.text(
            "SELECT username, details FROM audit_records ORDER BY seq DESC LIMIT 1")).first()
    assert found.username == admin.username and "cash_closing_reopenings" in found.details
    ledger.assert_consistent()
