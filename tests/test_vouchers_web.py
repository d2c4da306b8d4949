"""The till takes an aid voucher; the soliste spends earmarked Bou'Sols; the desk funds
a programme."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bousol.ledger import vouchers
from bousol.ledger.clock import paris_today
from tests.helpers import csrf_token, login

PASSWORD = "password-123"
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
