"""The desk's notes pages: exchange in notes through the form, the stock page and its
forms, a prestataire's deposit, a reactivation, and the slips that reprint."""

from __future__ import annotations

import re

import pytest

from bousol.ledger.desk import note_operations
from tests.helpers import BANK, PASSWORD, csrf_token, login


@pytest.fixture
def desk(client, ledger):
    ledger.subsidy("50.00")
    ledger.notes_at_desk([(20, 1, 10), (2, 301, 310), (1, 401, 410)])
    clerk = ledger.user("bank")
    login(client, clerk.username, PASSWORD)
    return ledger


def _post(client, url, page_html, **fields):
    return client.post(url, data={"csrf_token": csrf_token(page_html), **fields})


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)) | {
        "request_key": re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"',
                                 html).group(1)}


def test_exchange_in_notes_through_the_form(client, desk):
    marie = desk.soliste(name="Marie Lefebvre")
    url = f"/comptoir/change/{marie.party_code}"
    page = client.get(url)
    # Nothing counted yet: the screen says what is due and proposes notes.
    first = _post(client, url, page.text, euros="40", tender="cash", given_as="notes")
    assert first.status_code == 422
    assert "42,00\u00a0B dus" in first.text
    assert re.search(r'name="n20"[^>]*value="2"', first.text)
    # Wrong count: the screen says what is off.
    wrong = _post(client, url, page.text, euros="40", tender="cash", given_as="notes",
                  n20="2", n1="1")
    assert wrong.status_code == 422 and "il manque 1,00\u00a0B" in wrong.text
    preview = _post(client, url, page.text, euros="40", tender="cash", given_as="notes",
                    n20="2", n2="1", r2="A26-000305")
    assert preview.status_code == 200
    assert "2 × 20 B" in preview.text and "A26-000305" in preview.text
    fields = _hidden(preview.text)
    done = client.post(url, data={**fields, "confirm": "1"})
    assert done.status_code == 302
    again = client.post(url, data={**fields, "confirm": "1"})  # a second click
    assert again.headers["Location"] == done.headers["Location"]
    receipt = client.get(done.headers["Location"])
    assert "Bou'Sols remis en billets" in receipt.text
    assert "A26-000001, A26-000002" in receipt.text and "A26-000305" in receipt.text
    assert desk.system("notes_circulation") == 4200
    desk.assert_consistent()


def test_stock_page_forms(client, desk):
    page = client.get("/comptoir/billets")
    assert page.status_code == 200
    assert "Guichet G1" in page.text
    made = _post(client, "/comptoir/billets/serie", page.text, code="b27",
                 printed_on="01/01/2027", valid_until="30/06/2027")
    assert made.status_code == 302
    delivered = _post(client, "/comptoir/billets/livraison", page.text, series_code="B27",
                      denomination="5", first="1", last="100")
    assert delivered.status_code == 302
    twice = _post(client, "/comptoir/billets/livraison", page.text, series_code="B27",
                  denomination="10", first="50", last="60")
    assert twice.status_code == 422 and "déjà enregistrés" in twice.text
    moved = _post(client, "/comptoir/billets/mouvement", page.text,
                  serials="B27-000001..000050", to_place="vault", to_desk="G1")
    assert moved.status_code == 302
    bad = _post(client, "/comptoir/billets/mouvement", page.text,
                serials="B27-000001 B27-000999", to_place="desk", to_desk="G1")
    assert bad.status_code == 422 and "B27-000999" in bad.text
    assert 'aria-invalid="true"' in bad.text
    found = client.get("/comptoir/billets?serial=b27-000001")
    assert "Livrés par l'imprimeur → Coffre" in found.text


def test_deposit_and_reactivation_pages(client, desk):
    marie, shop = desk.soliste(), desk.prestataire(name="Boulangerie du Port")
    note_operations.exchange_notes(desk.uow(), BANK, party_code=marie.party_code, euros="40",
                         counts={20: 2, 2: 1})
    url = f"/comptoir/billets/depot/{shop.party_code}"
    page = client.get(url)
    preview = _post(client, url, page.text, serials="A26-000001\nA26-000301", mode="credit")
    assert preview.status_code == 200 and "22,00\u00a0B" in preview.text
    done = client.post(url, data={**_hidden(preview.text), "confirm": "1"})
    assert done.status_code == 302
    slip = client.get(done.headers["Location"])
    assert "Bordereau de dépôt de billets" in slip.text and "A26-000301" in slip.text
    assert desk.balance(shop) == 2200
    refused = _post(client, url, page.text, serials="A26-000001", mode="credit")
    assert refused.status_code == 409 and "rendu" in refused.text
    # A still-valid note is not reactivated.
    page = client.get("/comptoir/billets/reactivation")
    preview = _post(client, "/comptoir/billets/reactivation", page.text,
                    serials="A26-000002", mode="stamp", tender="cash")
    assert preview.status_code == 200 and "1,00\u00a0€" in preview.text
    refused = client.post("/comptoir/billets/reactivation",
                          data={**_hidden(preview.text), "confirm": "1"})
    assert refused.status_code == 422 and "encore valable" in refused.text
    desk.assert_consistent()


def test_notes_pages_are_for_the_bank(client, ledger):
    soliste = ledger.soliste()
    login(client, soliste.username, PASSWORD)
    assert client.get("/comptoir/billets").status_code == 403
    assert client.get("/comptoir/billets/reactivation").status_code == 403
