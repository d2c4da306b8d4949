"""Browser journeys in headless Chromium (Debian's package) driven by Playwright, with
axe-core checking each page against WCAG 2.1 A/AA.

They skip with a reason when /usr/bin/chromium is missing; ``BOUSOL_REQUIRE_BROWSER=1``
(CI) turns that skip into a failure.
"""

from __future__ import annotations

import pytest

from bousol.ledger.desk import notes
from tests.browser.helpers import assert_accessible, assert_clean_console, plain
from tests.helpers import BANK, PASSWORD

pytestmark = pytest.mark.browser


def test_soliste_logs_in_with_the_keyboard_and_sees_the_balance(live, page):
    base, ledger = live
    ledger.subsidy("10.00")
    marie = ledger.soliste(name="Marie Lefebvre", password=PASSWORD)
    baker = ledger.prestataire(name="Boulangerie du Vieux Boulogne")
    ledger.exchange(marie, "40.00")
    ledger.pay(marie, baker, "12.50", memo="Pain")

    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{base}/soliste/")
    assert "/connexion" in page.url  # sent to log in first
    assert_accessible(page)

    # Keyboard only: the skip link first, then the form fields, Enter to submit.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.get_by_label("Identifiant").focus()
    page.keyboard.type(marie.username)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/soliste/")

    balance = page.get_by_test_id("balance-bsol").inner_text()
    assert balance.replace("\u202f", " ").replace("\u00a0", " ") == "29,50 B"
    assert page.get_by_role("cell", name="Boulangerie du Vieux Boulogne").count() == 1
    assert_accessible(page)

    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/connexion")
    assert page.get_by_text("Vous êtes déconnecté").is_visible()
    assert_clean_console(console)


def test_wrong_password_message_is_announced_and_accessible(live, page):
    base, ledger = live
    marie = ledger.soliste(password=PASSWORD)
    page.goto(f"{base}/connexion")
    page.get_by_label("Identifiant").fill(marie.username)
    page.get_by_label("Mot de passe").fill("faux-mot-de-passe")
    page.get_by_role("button", name="Se connecter").click()
    field = page.get_by_label("Mot de passe")
    assert field.get_attribute("aria-invalid") == "true"
    assert "incorrect" in page.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()
    assert_accessible(page)


def test_bank_page_is_accessible(live, page):
    base, ledger = live
    ledger.subsidy("10.00")
    clerk = ledger.user("bank", password=PASSWORD)
    ledger.exchange(ledger.soliste(), "20.00", tender="cash")
    page.goto(f"{base}/connexion")
    page.get_by_label("Identifiant").fill(clerk.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/comptoir/")
    circulation = page.get_by_test_id("circulation").inner_text()
    assert circulation.replace("\u00a0", " ") == "21,00 B"
    assert_accessible(page)
    page.get_by_role("link", name="Historique de la réserve et de la couverture").click()
    page.wait_for_url("**/comptoir/reserve")
    assert page.get_by_role("img", name="Bou'Sols en circulation et euros qui les couvrent, "
                                        "par jour").is_visible()
    assert_accessible(page)
    page.go_back()
    # And in English, on request.
    page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert_accessible(page)


def test_clerk_registers_a_soliste_exchanges_40_euros_and_prints_the_receipt(live, page):
    base, ledger = live
    ledger.subsidy("10.00")
    # The desk holds notes of series A26: 20 of each value.
    ledger.notes_at_desk([(value, first, first + 19) for value, first
                          in ((20, 1), (10, 101), (5, 201), (2, 301), (1, 401))])
    clerk = ledger.user("bank", password=PASSWORD)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(f"{base}/connexion")
    page.get_by_label("Identifiant").fill(clerk.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/comptoir/")
    page.get_by_label("Rechercher un adhérent (nom ou code)").fill("lefebvre")
    page.keyboard.press("Enter")
    page.wait_for_url("**/comptoir/adherents?q=lefebvre")
    assert page.get_by_text("Aucun adhérent ne correspond").is_visible()
    assert_accessible(page)

    # Not a member yet: register her, with the yearly fee paid in cash.
    page.get_by_role("link", name="Inscrire un nouvel adhérent").click()
    page.get_by_label("Nom et prénom").fill("Marie Lefebvre")
    page.get_by_label("Téléphone").fill("06 11 22 33 44")
    page.get_by_label("Commune").fill("Wimereux")
    page.get_by_role("button", name="Inscrire et encaisser la cotisation").click()
    assert page.get_by_text("accepter la charte").is_visible()  # forgot the charter
    assert_accessible(page)
    page.get_by_label("La personne a lu et accepte la charte du Bou'Sol").check()
    page.get_by_role("button", name="Inscrire et encaisser la cotisation").click()
    # The member's sheet: code, fee, username and the one-time code for a password.
    page.get_by_role("heading", name="Fiche d'adhésion au Bou'Sol").wait_for()
    assert plain(page.locator("dd.amount").first.inner_text()) == "3,00 €"
    assert page.get_by_test_id("first-code").is_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Continuer : change euros → Bou'Sols").click()
    page.wait_for_url("**/comptoir/change/S-*")
    marie = page.url.rsplit("/", 1)[1]

    # 40 € in cash for 42 Bou'Sols in paper notes.
    page.get_by_label("Montant en euros").fill("40")
    page.get_by_label("Espèces").check()
    page.get_by_label("Billets", exact=True).check()
    page.get_by_label("Billets de 20 B", exact=True).fill("2")
    page.get_by_label("Billets de 1 B", exact=True).fill("1")
    assert_accessible(page)
    page.get_by_role("button", name="Calculer").click()
    # One Bou'Sol short: the screen says what is off, and keeps what was typed.
    assert page.get_by_role("alert").inner_text().replace("\u00a0", " ").endswith(
        "il manque 1,00 B.")
    assert_accessible(page)
    page.get_by_label("Billets de 1 B", exact=True).fill("")
    page.get_by_label("Billets de 2 B", exact=True).fill("1")
    page.get_by_role("button", name="Calculer").click()
    assert page.get_by_test_id("confirm-bousols").inner_text().replace("\u00a0", " ") == "42,00 B"
    assert page.get_by_test_id("confirm-notes").inner_text().split("\n") == ["2 × 20 B",
                                                                             "1 × 2 B"]
    assert ledger.system("notes_circulation") == 0  # not before confirmation
    assert_accessible(page)
    page.get_by_role("button", name="Confirmer le change").click()
    page.wait_for_url("**/comptoir/recu/*")

    assert page.get_by_test_id("receipt-bousols").inner_text().replace("\u00a0", " ") == "42,00 B"
    assert page.get_by_test_id("receipt-notes").inner_text().split("\n") == [
        "2 × 20 B : A26-000001, A26-000002", "1 × 2 B : A26-000301"]
    assert ledger.system("notes_circulation") == 4200 and ledger.balance(marie) == 0
    ledger.assert_consistent()
    assert_accessible(page)
    # Printing hides the site's header: the receipt alone goes to paper.
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert page.get_by_role("heading", name="Reçu de change").is_visible()
    assert_clean_console(console)


def test_desk_notes_closing_and_payout_pages_are_accessible(live, page):
    """Every page of the desk and of the treasurer's transfers, with forms showing an
    error where they can, passes axe-core."""
    base, ledger = live
    ledger.subsidy("10.00")
    notes.register_series(ledger.uow(), BANK, code="A26", printed_on="2026-11-01",
                          valid_until="2099-12-31")
    notes.register_delivery(ledger.uow(), BANK, series_code="A26", denomination=20,
                            first=1, last=20)
    notes.move(ledger.uow(), BANK, serials="A26-000001..000020", to_place="vault")
    notes.move(ledger.uow(), BANK, serials="A26-000001..000010", to_place="desk")
    shop = ledger.prestataire(name="Boulangerie du Port")
    clerk = ledger.user("bank", password=PASSWORD)
    treasurer = ledger.user("admin", password=PASSWORD)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    def log_in(user) -> None:
        page.goto(f"{base}/connexion")
        page.get_by_label("Identifiant").fill(user.username)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_load_state()

    log_in(clerk)
    for path in ("/comptoir/billets", "/comptoir/billets?serial=A26-000003",
                 "/comptoir/billets/reactivation", f"/comptoir/billets/depot/{shop.party_code}",
                 f"/comptoir/prestataire/{shop.party_code}/banque", "/comptoir/cloture",
                 "/comptoir/clotures"):
        page.goto(base + path)
        assert page.locator("h1").count() == 1, path
        assert_accessible(page)
    # A move refused: the error is tied to its field.
    page.goto(f"{base}/comptoir/billets")
    page.get_by_label("Billets à déplacer").fill("A26-000999")
    page.get_by_role("button", name="Déplacer").click()
    assert "A26-000999" in page.get_by_text("jamais enregistré").inner_text()
    assert_accessible(page)
    page.goto(f"{base}/comptoir/billets/depot/{shop.party_code}")
    page.get_by_label("Billets déposés").fill("A26-000001")
    page.get_by_role("button", name="Compter").click()
    assert page.get_by_text("pas en circulation").is_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Se déconnecter").click()

    log_in(treasurer)
    page.goto(f"{base}/admin/virements")
    assert page.locator("h1").count() == 1
    assert_accessible(page)
    assert_clean_console(console)
