"""The till takes an aid voucher; the soliste spends earmarked Bou'Sols; the desk funds
a programme."""

from __future__ import annotations

import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel.clock import paris_today
from bousol.web.admin import audit as admin_audit
from tests.helpers import PASSWORD, csrf_token, login

TODAY = paris_today()


@pytest.fixture
def aid(app, ledger):
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire", budget="1000", starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=90), filieres=["alimentation"],
        default_validity_days=60, multi_use=True)
    ledger.exchange(ccas, "100.00", programme_id=programme.id)
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    till = app.test_client()
    login(till, grocer.username, PASSWORD)
    return ledger, ccas, programme, grocer, till


def test_the_till_types_the_code_sees_the_voucher_and_takes_part_of_it(aid):
    ledger, ccas, programme, grocer, till = aid
    voucher = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="DOS-7", amount="30",
                             programme_id=programme.id, beneficiary_name="Mme Secret")
    page = till.get("/prestataire/bons")
    wrong = voucher.code[:-1] + ("Z" if voucher.code[-1] != "Z" else "Y")
    typo = till.post("/prestataire/bons", data={"csrf_token": csrf_token(page.text),
                                                "code": wrong})
    assert typo.status_code == 422 and "mal saisi" in typo.text
    found = till.post("/prestataire/bons", data={"csrf_token": csrf_token(page.text),
                                                 "code": voucher.code.replace("-", " ").lower()})
    assert found.status_code == 302
    shown = till.get(found.headers["Location"])
    assert "30,00" in shown.text and "Alimentation" in shown.text
    assert "DOS-7" not in shown.text and "Secret" not in shown.text  # never who
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', shown.text).group(1)
    form = {"csrf_token": csrf_token(shown.text), "request_key": key, "amount": "12,50"}
    taken = till.post(found.headers["Location"], data=form)
    again = till.post(found.headers["Location"], data=form)  # a second click
    assert taken.status_code == again.status_code == 302
    after = till.get(taken.headers["Location"])
    assert "flash-voucher-taken" in after.text
    forged = till.get(f"/prestataire/bons/{voucher.code}?pris=1")
    assert "Bon accepté" not in forged.text  # a link cannot show "accepted"
    assert re.search(r'data-testid="voucher-remaining">17,50', after.text)
    assert ledger.balance(grocer) == 1250
    too_much = till.post(found.headers["Location"], data={
        "csrf_token": csrf_token(after.text), "request_key": "a" * 32, "amount": "17,51"})
    assert too_much.status_code == 422 and "plus que" in too_much.text
    statement = till.get("/prestataire/historique").text
    assert voucher.code in statement  # the redemption, with the code, in the statement
    ledger.assert_consistent()


def test_refusals_at_the_till_are_clear(aid, app):
    ledger, ccas, programme, _grocer, till = aid
    books = ledger.prestataire("loisirs-culture")
    shop = app.test_client()
    login(shop, books.username, PASSWORD)
    voucher = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="DOS-8", amount="10",
                             programme_id=programme.id)
    page = shop.get(f"/prestataire/bons/{voucher.code}")
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', page.text).group(1)
    refused = shop.post(f"/prestataire/bons/{voucher.code}", data={
        "csrf_token": csrf_token(page.text), "request_key": key, "amount": "5"})
    assert refused.status_code == 403 and "filières" in refused.text
    vouchers.cancel(ledger.uow(), ccas, code=voucher.code)
    cancelled = till.get(f"/prestataire/bons/{voucher.code}")
    assert "Annulé par le CCAS" in cancelled.text and 'data-testid="redeem"' not in cancelled.text
    assert till.get("/prestataire/bons/ABCD").status_code == 404
    assert ledger.balance(books) == 0


def test_the_desk_funds_a_programme(aid, app):
    ledger, ccas, programme, _grocer, _till = aid
    clerk = ledger.user("bank")
    desk = app.test_client()
    login(desk, clerk.username, PASSWORD)
    page = desk.get(f"/comptoir/change/{ccas.party_code}")
    assert "Aide alimentaire" in page.text
    preview = desk.post(f"/comptoir/change/{ccas.party_code}", data={
        "csrf_token": csrf_token(page.text), "euros": "40,00", "tender": "card",
        "given_as": "electronic", "programme": str(programme.id)})
    assert preview.status_code == 200 and "42,00" in preview.text
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', preview.text).group(1)
    done = desk.post(f"/comptoir/change/{ccas.party_code}", data={
        "csrf_token": csrf_token(preview.text), "euros": "40,00", "tender": "card",
        "given_as": "electronic", "programme": str(programme.id), "request_key": key,
        "confirm": "1"})
    assert done.status_code == 302
    with ledger.engine.connect() as conn:
        assert vouchers.figures(conn, programme.id).available_cents == 10500 + 4200
    assert ledger.balance(ccas) == 0
    ledger.assert_consistent()


def test_a_soliste_sees_and_spends_earmarked_bousols(aid, app):
    ledger, ccas, programme, grocer, _till = aid
    marie = ledger.soliste(name="Marie")
    ledger.exchange(marie, "20.00")
    voucher = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="DOS-9", amount="15",
                             programme_id=programme.id, soliste_code=marie.party_code)
    phone = app.test_client()
    login(phone, marie.username, PASSWORD)
    home = phone.get("/soliste/")
    assert "Bou&#39;Sols fléchés" in home.text or "Bou'Sols fléchés" in home.text
    assert "15,00" in home.text and "21,00" in home.text  # apart from her free Bou'Sols
    page = phone.get("/payer/bons")
    assert voucher.code in page.text
    wrong = phone.post("/payer/bons", data={
        "csrf_token": csrf_token(page.text), "voucher": str(voucher.id),
        "payee": grocer.party_code, "amount": "16", "secret": PASSWORD})
    assert wrong.status_code == 422 and "plus que" in wrong.text
    paid = phone.post("/payer/bons", data={
        "csrf_token": csrf_token(page.text), "voucher": str(voucher.id),
        "payee": grocer.party_code, "amount": "6,00", "secret": PASSWORD},
        follow_redirects=True)
    assert "il reste 9,00" in paid.text.replace("\u202f", " ").replace("\xa0", " ")
    assert ledger.balance(grocer) == 600 and ledger.balance(marie) == 2100
    ledger.assert_consistent()


# ---------------------------------------------------------------- issue 13: privacy of aid


def _spend_earmarked(ledger, app, ccas, programme, grocer):
    """Marie spends 6 B of an earmarked voucher through her phone; a paper voucher is
    taken at the grocer's till."""
    marie = ledger.soliste(name="Marie Lefebvre")
    earmarked = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="DOS-9", amount="15",
                               programme_id=programme.id, soliste_code=marie.party_code)
    phone = app.test_client()
    login(phone, marie.username, PASSWORD)
    page = phone.get("/payer/bons")
    paid = phone.post("/payer/bons", data={
        "csrf_token": csrf_token(page.text), "voucher": str(earmarked.id),
        "payee": grocer.party_code, "amount": "6,00", "secret": PASSWORD})
    assert paid.status_code == 302
    paper = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="DOS-10", amount="10",
                           programme_id=programme.id)
    vouchers.redeem(ledger.uow(), grocer, code=paper.code, amount="4")
    return marie, earmarked, paper


def test_journals_show_no_beneficiary_nor_code_of_an_aid_redemption(aid, app):
    ledger, ccas, programme, grocer, _till = aid
    marie, earmarked, paper = _spend_earmarked(ledger, app, ccas, programme, grocer)
    for role, path in (("admin", "/admin/"), ("bank", "/comptoir/")):
        person = ledger.user(role)
        web = app.test_client()
        login(web, person.username, PASSWORD)
        page = web.get(path)
        assert page.status_code == 200, (role, page.text[:300])
        text = page.text.replace("&#39;", "'")
        journal = text[text.index('id="journal"'):]
        assert journal.count("Bon d'aide — bénéficiaire CCAS, chez Épicerie solidaire") == 2
        assert 'data-testid="aid-actor">bénéficiaire CCAS' in journal
        for secret in (marie.username, "Marie Lefebvre", earmarked.code, paper.code,
                       earmarked.code[:4], paper.code[:4]):
            assert secret not in journal, (role, secret)
    # The entry itself names no actor for the earmarked spending.
    with ledger.engine.connect() as conn:
        actors = conn.execute(sa.text(
            "SELECT actor_user_id FROM entries WHERE kind = 'voucher_redemption' "
            "ORDER BY id")).scalars().all()
    assert actors == [None, grocer.user_id]


def test_audit_trail_shows_bénéficiaire_ccas_for_aid_spending(aid, app):
    ledger, ccas, programme, grocer, _till = aid
    marie, _earmarked, _paper = _spend_earmarked(ledger, app, ccas, programme, grocer)
    with ledger.engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT username, user_id, address FROM audit_records "
            "WHERE action = 'POST /payer/bons'")).all()
    assert stored and all(r.username == "bénéficiaire CCAS" and r.user_id is None
                          and r.address == "—" for r in stored)
    admin = ledger.user("admin")
    web = app.test_client()
    login(web, admin.username, PASSWORD)
    page = web.get("/admin/audit")
    assert page.status_code == 200 and "bénéficiaire CCAS" in page.text
    assert "/payer/bons" in page.text
    mine = web.get(f"/admin/audit?qui={marie.username}")
    assert mine.status_code == 200 and "/payer/bons" not in mine.text
    # Nor a free-text search for her name (the record's details name her log-in row).
    typed = web.get(f"/admin/audit?q={marie.username}")
    assert typed.status_code == 200 and "/payer/bons" not in typed.text


def test_audit_trail_hides_an_older_record_of_a_soliste_spending_aid(aid, app):
    """Records written before the pseudonymous context named the soliste: the page
    shows them as "bénéficiaire CCAS" from nowhere, without its user id or key scope."""
    ledger, _ccas, _programme, _grocer, _till = aid
    marie = ledger.soliste(name="Marie Lefebvre")
    details = json.dumps({"changes": [
        {"op": "insert", "table": "idempotency_keys", "rows": 1, "columns": ["scope"],
         "values": {"scope": [f"user:{marie.user_id}"]}},
        {"op": "insert", "table": "voucher_redemptions", "rows": 1,
         "columns": ["voucher_id"], "values": {"voucher_id": [3]}}]})
    old = SimpleNamespace(seq=1, at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                          user_id=marie.user_id, username=marie.username,
                          address="192.0.2.7", action="POST /api/v1/earmarked",
                          details=details, hash="0" * 64)
    with app.app_context(), ledger.engine.connect() as conn:
        (shown,) = admin_audit._hide_aid_beneficiaries(conn, [old])
        (kept,) = admin_audit._hide_aid_beneficiaries(
            conn, [SimpleNamespace(**{**vars(old), "details": "{}"})])
    assert shown.username == "bénéficiaire CCAS" and shown.address == "—"
    assert shown.user_id is None and f"user:{marie.user_id}" not in shown.details
    assert kept.username == marie.username  # her other acts keep her name
