"""The issue's journey in headless Chromium: a merchant asks for 12,50 B at the till, a
soliste opens the pay link on a phone, confirms, and the till shows it paid by itself."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    CHROMIUM_ARGS,
    assert_accessible,
    assert_clean_console,
    log_in,
    plain,
)
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def test_till_request_of_12_50_paid_by_a_soliste(live, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    base, ledger = live
    ledger.subsidy("10.00")
    baker = ledger.prestataire(name="Boulangerie du Port")
    marie = ledger.soliste(name="Marie Lefebvre")
    ledger.exchange(marie, "40.00")  # 42,00 B

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        till = browser.new_context(locale="fr-FR").new_page()
        phone = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844},
                                    is_mobile=True).new_page()
        console: list[str] = []
        for page in (till, phone):
            page.on("console", lambda message: console.append(message.text))

        # The baker at the till types the amount and shows the QR code.
        log_in(till, base, baker.username, "/prestataire/encaisser")
        till.wait_for_url("**/prestataire/encaisser")
        assert_accessible(till)
        till.get_by_label("Montant en Bou'Sols").fill("12,50")
        till.get_by_label("Référence (facultatif)").fill("Ticket 41")
        till.get_by_role("button", name="Afficher le QR code").click()
        till.wait_for_url("**/prestataire/demandes/*")
        assert plain(till.get_by_test_id("till-amount").inner_text()) == "12,50 B"
        expect(till.get_by_test_id("request-status")).to_have_text("En attente du paiement")
        assert till.locator("img.qr").evaluate("img => img.naturalWidth") > 0  # the QR drew
        assert_accessible(till)
        pay_link = till.get_by_test_id("pay-link").inner_text()

        # Marie opens the link (what the QR code encodes) on her phone, logs in, pays.
        phone.goto(pay_link)
        phone.get_by_label("Identifiant").fill(marie.username)
        phone.get_by_label("Mot de passe").fill(PASSWORD)
        phone.get_by_role("button", name="Se connecter").click()
        phone.wait_for_url(pay_link)
        assert "Boulangerie du Port" in phone.content()
        assert plain(phone.get_by_test_id("request-amount").inner_text()) == "12,50 B"
        assert_accessible(phone)
        phone.get_by_label("Mot de passe ou code PIN").fill(PASSWORD)
        phone.get_by_test_id("confirm-pay").click()
        phone.wait_for_url("**/payer/recu/*")
        assert plain(phone.get_by_test_id("receipt-amount").inner_text()) == "12,50 B"
        assert plain(phone.get_by_test_id("receipt-balance").inner_text()) == "29,50 B"
        assert_accessible(phone)

        # The till's screen says so by itself: no reload, no click.
        expect(till.get_by_test_id("request-status")).to_have_text("Payée", timeout=10_000)
        expect(till.locator("#request-payer")).to_contain_text(marie.party_code)
        expect(till.locator("img.qr")).to_be_hidden()
        assert_accessible(till)
        browser.close()

    assert ledger.balance(marie) == 2950 and ledger.balance(baker) == 1250
    ledger.assert_consistent()
    assert_clean_console(console)


def test_payment_pages_are_accessible(live, chromium_path):
    from playwright.sync_api import sync_playwright

    base, ledger = live
    ledger.subsidy("10.00")
    ledger.phase("b2b", True)
    baker = ledger.prestataire(name="Boulangerie du Port")
    miller = ledger.prestataire(name="Moulin de Wimille")
    marie = ledger.soliste(name="Marie Lefebvre")
    admin = ledger.user("admin")
    ledger.exchange(marie, "40.00")
    paid = ledger.pay(marie, baker, "10.00", memo="Pain")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        console: list[str] = []

        def visit(username: str, paths: list[str], form_errors: dict[str, dict] = {}):  # noqa: B006
            page = browser.new_context(locale="fr-FR").new_page()
            page.on("console", lambda message: console.append(message.text))
            log_in(page, base, username, paths[0])
            for path in paths:
                page.goto(f"{base}{path}")
                assert page.url.endswith(path), page.url
                assert_accessible(page)
                if path in form_errors:  # the same page showing an error
                    for label, value in form_errors[path].items():
                        page.get_by_label(label, exact=True).fill(value)
                    page.locator("main form button[type=submit]").last.click()
                    page.wait_for_load_state()
                    assert page.locator(".error").count() >= 1
                    assert_accessible(page)
            page.context.close()

        visit(baker.username, [
            "/prestataire/demandes", "/prestataire/qr",
            f"/prestataire/paiements/{paid.entry_id}/rembourser",
            "/prestataire/fournisseur/payer", "/prestataire/factures/nouvelle",
        ], {f"/prestataire/paiements/{paid.entry_id}/rembourser": {"Montant à rembourser": "99"},
            "/prestataire/factures/nouvelle": {"Code du client prestataire": "P-999999",
                                              "Montant en Bou'Sols": "5",
                                              "Référence de la facture": "F1"}})
        visit(marie.username, ["/payer/", f"/payer/commerce/{miller.party_code}"],
              {"/payer/": {"Code affiché par le commerçant": "ZZZZZZ"}})
        visit(admin.username, ["/admin/phases"])
        browser.close()
    assert_clean_console(console)
