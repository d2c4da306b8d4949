"""The till, the pay link, the fixed QR code, refunds and B2B pages, through Flask."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from bousol.ledger.merchants import payment_requests
from tests.helpers import PASSWORD, csrf_token, login


@pytest.fixture
def till(app, ledger):
    ledger.subsidy("100.00")
    baker = ledger.prestataire(name="Boulangerie du Port")
    marie = ledger.soliste(name="Marie Lefebvre")
    ledger.exchange(marie, "40.00")  # 42,00 B
    merchant, customer = app.test_client(), app.test_client()
    login(merchant, baker.username, PASSWORD)
    login(customer, marie.username, PASSWORD)
    return ledger, baker, marie, merchant, customer


def new_request(merchant, amount="12,50", reference="Ticket 7"):
    page = merchant.get("/prestataire/encaisser")
    assert page.status_code == 200
    created = merchant.post("/prestataire/encaisser", data={
        "csrf_token": csrf_token(page.text), "amount": amount, "reference": reference})
    assert created.status_code == 302, created.text
    shown = merchant.get(created.headers["Location"])
    token = re.search(r'data-testid="pay-link">https?://[^<]*/payer/([A-Za-z0-9_-]+)<',
                      shown.text).group(1)
    request_id = int(created.headers["Location"].rstrip("/").split("/")[-1])
    return request_id, token, shown


def test_merchant_asks_and_soliste_pays_once(till):
    ledger, baker, marie, merchant, customer = till
    request_id, token, shown = new_request(merchant)
    assert "12,50" in shown.text and 'data-testid="short-code"' in shown.text
    assert merchant.get(f"/prestataire/demandes/{request_id}/qr.svg").mimetype == "image/svg+xml"
    assert merchant.get(f"/prestataire/demandes/{request_id}/etat").json["status"] == "open"

    page = customer.get(f"/payer/{token}")
    assert page.status_code == 200
    assert "Boulangerie du Port" in page.text and "12,50" in page.text
    wrong = customer.post(f"/payer/{token}", data={"csrf_token": csrf_token(page.text),
                                                   "secret": "not-my-password"})
    assert wrong.status_code == 403 and "incorrect" in wrong.text
    assert ledger.balance(marie) == 4200
    paid = customer.post(f"/payer/{token}", data={"csrf_token": csrf_token(page.text),
                                                  "secret": PASSWORD})
    assert paid.status_code == 302 and "/payer/recu/" in paid.headers["Location"]
    receipt = customer.get(paid.headers["Location"])
    assert "12,50" in receipt.text and "29,50" in receipt.text  # paid, and the balance after
    state = merchant.get(f"/prestataire/demandes/{request_id}/etat").json
    assert state["status"] == "paid" and marie.party_code in state["payer"]
    # A second submission (double tap, back button): the receipt again, nothing moves.
    again = customer.post(f"/payer/{token}", data={"csrf_token": csrf_token(page.text),
                                                   "secret": PASSWORD})
    assert again.status_code == 302 and again.headers["Location"] == paid.headers["Location"]
    assert ledger.balance(marie) == 2950 and ledger.balance(baker) == 1250
    ledger.assert_consistent()


def test_pay_link_needs_a_login_and_returns_to_it(app, till):
    _ledger, _baker, _marie, merchant, _customer = till
    _id, token, _shown = new_request(merchant)
    stranger = app.test_client()
    answer = stranger.get(f"/payer/{token}")
    assert answer.status_code == 302 and "/connexion" in answer.headers["Location"]
    assert f"payer/{token}" in answer.headers["Location"].replace("%2F", "/")


def test_short_code_typed_by_hand(till):
    _ledger, _baker, _marie, merchant, customer = till
    _id, token, shown = new_request(merchant)
    code = re.search(r'data-testid="short-code">([A-Z0-9]+)<', shown.text).group(1)
    page = customer.get("/payer/")
    found = customer.post("/payer/", data={"csrf_token": csrf_token(page.text),
                                           "code": code.lower()})
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/payer/{token}")
    unknown = customer.post("/payer/", data={"csrf_token": csrf_token(page.text),
                                             "code": "ZZZZZZ"})
    assert unknown.status_code == 422 and "Aucune demande" in unknown.text


def test_requests_are_private_to_their_merchant(app, till):
    ledger, _baker, _marie, merchant, customer = till
    request_id, _token, _shown = new_request(merchant)
    rival = ledger.prestataire()
    other = app.test_client()
    login(other, rival.username, PASSWORD)
    assert other.get(f"/prestataire/demandes/{request_id}").status_code == 404
    assert other.get(f"/prestataire/demandes/{request_id}/etat").status_code == 404
    assert customer.get("/prestataire/encaisser").status_code == 403
    assert customer.get("/payer/not-a-real-token-at-all-000").status_code == 404


def test_bad_amount_at_the_till_is_a_form_error(till):
    _ledger, _baker, _marie, merchant, _customer = till
    page = merchant.get("/prestataire/encaisser")
    answer = merchant.post("/prestataire/encaisser", data={
        "csrf_token": csrf_token(page.text), "amount": "12,505"})
    assert answer.status_code == 422 and "Montant invalide" in answer.text


def test_merchant_cancels_and_the_link_says_so(till):
    ledger, _baker, _marie, merchant, customer = till
    request_id, token, shown = new_request(merchant)
    cancelled = merchant.post(f"/prestataire/demandes/{request_id}/annuler",
                              data={"csrf_token": csrf_token(shown.text)})
    assert cancelled.status_code == 302
    page = customer.get(f"/payer/{token}")
    assert 'data-testid="request-closed"' in page.text and "annulé" in page.text
    assert ledger.count("entries") == 2


def test_fixed_qr_code_pays_the_amount_typed_once(till):
    ledger, baker, marie, merchant, customer = till
    poster = merchant.get("/prestataire/qr")
    assert f"/payer/commerce/{baker.party_code}" in poster.text
    assert merchant.get("/prestataire/qr.svg").data.startswith(b"<svg")
    page = customer.get(f"/payer/commerce/{baker.party_code}")
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', page.text).group(1)
    bad = customer.post(f"/payer/commerce/{baker.party_code}", data={
        "csrf_token": csrf_token(page.text), "request_key": key, "amount": "abc",
        "secret": PASSWORD})
    assert bad.status_code == 422 and "Montant invalide" in bad.text
    form = {"csrf_token": csrf_token(page.text), "request_key": key, "amount": "7,20",
            "memo": "Pain", "secret": PASSWORD}
    first = customer.post(f"/payer/commerce/{baker.party_code}", data=form)
    second = customer.post(f"/payer/commerce/{baker.party_code}", data=form)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]  # same entry
    assert ledger.balance(marie) == 4200 - 720 and ledger.balance(baker) == 720
    assert customer.get("/payer/commerce/P-999999").status_code == 404


def test_refund_part_of_a_payment(till):
    ledger, baker, marie, merchant, _customer = till
    paid = ledger.pay(marie, baker, "10.00")
    page = merchant.get(f"/prestataire/paiements/{paid.entry_id}/rembourser")
    assert page.status_code == 200 and "10,00" in page.text
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', page.text).group(1)
    done = merchant.post(f"/prestataire/paiements/{paid.entry_id}/rembourser", data={
        "csrf_token": csrf_token(page.text), "request_key": key, "amount": "4,00"},
        follow_redirects=True)
    assert "Remboursement enregistré" in done.text
    assert re.search(r'data-testid="remaining">6,00', done.text)
    too_much = merchant.post(f"/prestataire/paiements/{paid.entry_id}/rembourser", data={
        "csrf_token": csrf_token(done.text), "request_key": "f" * 32, "amount": "6,01"})
    assert too_much.status_code == 422 and "6,00\u00a0B au plus" in too_much.text
    assert ledger.balance(marie) == 4200 - 1000 + 400
    exchange = ledger.exchange(marie, "20.00").entry_id
    assert merchant.get(f"/prestataire/paiements/{exchange}/rembourser").status_code == 404


def test_b2b_supplier_payment_refused_until_the_association_opens_it(app, till, ledger):
    _ledger, baker, marie, merchant, _customer = till
    miller = ledger.prestataire(name="Moulin de Wimille")
    ledger.pay(marie, baker, "30.00")

    def pay_supplier():
        page = merchant.get("/prestataire/fournisseur/payer")
        key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"',
                        page.text).group(1)
        return page, merchant.post("/prestataire/fournisseur/payer", data={
            "csrf_token": csrf_token(page.text), "request_key": key,
            "supplier": miller.party_code, "amount": "20,00", "reference": "Facture 12",
            "secret": PASSWORD})

    page, refused = pay_supplier()
    assert "pas encore ouverte" in page.text
    assert refused.status_code == 403 and "B2B" in refused.text
    assert ledger.balance(miller) == 0

    admin = app.test_client()
    boss = ledger.user("admin")
    login(admin, boss.username, PASSWORD)
    phases = admin.get("/admin/phases")
    no_reason = admin.post("/admin/phases", data={
        "csrf_token": csrf_token(phases.text), "phase": "b2b", "on": "on", "reason": ""})
    assert no_reason.status_code == 422
    opened = admin.post("/admin/phases", data={
        "csrf_token": csrf_token(phases.text), "phase": "b2b", "on": "on",
        "reason": "Conseil collégial du 12/01/2027"}, follow_redirects=True)
    assert re.search(r'data-testid="phase-b2b-state"><strong>Ouverte</strong>\s*— depuis le',
                     opened.text)
    assert "Conseil collégial du 12/01/2027" in opened.text

    _page, paid = pay_supplier()
    assert paid.status_code == 302
    assert ledger.balance(miller) == 2000 and ledger.balance(baker) == 1000
    ledger.assert_consistent()


def test_invoice_request_accepted_or_declined_by_the_customer(app, till, ledger):
    _ledger, baker, marie, merchant, _customer = till
    ledger.phase("b2b", True)
    grocer = ledger.prestataire(name="Épicerie Solidaire")
    ledger.pay(marie, grocer, "30.00")
    shop = app.test_client()
    login(shop, grocer.username, PASSWORD)
    for reference in ("F-1", "F-2"):
        page = merchant.get("/prestataire/factures/nouvelle")
        sent = merchant.post("/prestataire/factures/nouvelle", data={
            "csrf_token": csrf_token(page.text), "customer": grocer.party_code.lower(),
            "amount": "10", "reference": reference})
        assert sent.status_code == 302
    inbox = shop.get("/prestataire/demandes")
    tokens = re.findall(r'href="/payer/([A-Za-z0-9_-]{20,})"', inbox.text)
    assert len(tokens) == 2 and "Boulangerie du Port" in inbox.text
    pay_page = shop.get(f"/payer/{tokens[0]}")
    assert shop.post(f"/payer/{tokens[0]}", data={
        "csrf_token": csrf_token(pay_page.text), "secret": PASSWORD}).status_code == 302
    declined = shop.post(f"/prestataire/factures/{tokens[1]}/refuser", data={
        "csrf_token": csrf_token(inbox.text), "reason": "Doublon"}, follow_redirects=True)
    assert "Doublon" in declined.text
    assert "Refusée par le client" in merchant.get("/prestataire/demandes").text
    assert ledger.balance(baker) == 1000 and ledger.balance(grocer) == 2000


def test_soliste_chooses_a_pin_and_pays_with_it(till):
    ledger, baker, _marie, merchant, customer = till
    page = customer.get("/payer/code-pin")
    assert "Vous n'avez pas de code PIN" in page.text
    mismatch = customer.post("/payer/code-pin", data={
        "csrf_token": csrf_token(page.text), "password": PASSWORD, "pin": "2468",
        "pin_again": "2469"})
    assert mismatch.status_code == 422
    wrong = customer.post("/payer/code-pin", data={
        "csrf_token": csrf_token(page.text), "password": "nope-nope", "pin": "2468",
        "pin_again": "2468"})
    assert wrong.status_code == 403
    letters = customer.post("/payer/code-pin", data={
        "csrf_token": csrf_token(page.text), "password": PASSWORD, "pin": "24a8",
        "pin_again": "24a8"})
    assert letters.status_code == 422 and "4 à 8 chiffres" in letters.text
    done = customer.post("/payer/code-pin", data={
        "csrf_token": csrf_token(page.text), "password": PASSWORD, "pin": "2468",
        "pin_again": "2468"}, follow_redirects=True)
    assert "Vous avez un code PIN" in done.text
    _id, token, _shown = new_request(merchant, amount="2")
    pay_page = customer.get(f"/payer/{token}")
    paid = customer.post(f"/payer/{token}", data={"csrf_token": csrf_token(pay_page.text),
                                                  "secret": "2468"})
    assert paid.status_code == 302 and ledger.balance(baker) == 200


def test_not_approved_merchants_and_invoices_stay_private(app, till, ledger):
    _ledger, baker, _marie, _merchant, customer = till
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'suspended' WHERE code = :c"),
                     {"c": baker.party_code})
    assert customer.get(f"/payer/commerce/{baker.party_code}").status_code == 404
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'approved' WHERE code = :c"),
                     {"c": baker.party_code})
    ledger.phase("b2b", True)
    grocer = ledger.prestataire()
    view = payment_requests.create_invoice_request(
        ledger.uow(), baker, customer_code=grocer.party_code, amount="5", reference="F-9")
    page = customer.get("/payer/")
    typed = customer.post("/payer/", data={"csrf_token": csrf_token(page.text),
                                           "code": view.short_code})
    assert typed.status_code == 422  # an invoice's code opens nothing for anyone else
