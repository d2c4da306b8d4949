"""The soliste's and the prestataire's spaces and the desk's reconversion requests in
headless Chromium, each page checked by axe-core (WCAG 2.1 A/AA)."""

from __future__ import annotations

import re

import pytest

from bousol.ledger.desk import reconversion_requests as rr
from tests.browser.helpers import assert_accessible, assert_clean_console
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def _plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def test_spaces_and_desk_requests_are_accessible(live, page):
    base, ledger = live
    ledger.subsidy("10.00")
    marie = ledger.soliste(name="Marie Lefebvre", password=PASSWORD)
    baker = ledger.prestataire(name="Boulangerie du Port", password=PASSWORD)
    clerk = ledger.user("bank", password=PASSWORD)
    ledger.exchange(marie, "40.00")
    bread = ledger.pay(marie, baker, "12.50", memo="Pain").entry_id
    rr.request(ledger.uow(), baker, "2.00", memo="Essai")  # one waiting for the desk
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    def log_in(user) -> None:
        page.goto(f"{base}/connexion")
        page.get_by_label("Identifiant").fill(user.username)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_load_state()

    # The soliste: home, history with a filter error, then filtered, the receipt.
    log_in(marie)
    assert _plain(page.get_by_test_id("balance-bsol").inner_text()) == "29,50 B"
    assert_accessible(page)
    page.get_by_role("link", name="Historique", exact=True).click()
    page.wait_for_url("**/soliste/historique")
    assert_accessible(page)
    page.get_by_label("Du").fill("31/02/2026")
    page.get_by_role("button", name="Filtrer").click()
    field = page.get_by_label("Du")
    assert field.get_attribute("aria-invalid") == "true"
    assert "existe pas" in page.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()
    assert_accessible(page)
    page.get_by_label("Du").fill("")
    page.get_by_label("Sens").select_option("out")
    page.get_by_label("Recherche (libellé, nom ou code)").fill("boulangerie")
    page.get_by_role("button", name="Filtrer").click()
    assert page.get_by_role("cell", name="Pain").count() == 1
    assert_accessible(page)
    page.get_by_role("link", name=re.compile(f"n° {bread}")).click()
    page.wait_for_url(f"**/soliste/recu/{bread}")
    assert "Boulangerie du Port" in page.get_by_test_id("receipt-counterparty").inner_text()
    assert_accessible(page)
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator(".space-nav").is_visible()
    assert page.locator(".receipt").is_visible()
    page.emulate_media(media="screen")
    page.get_by_role("button", name="Se déconnecter").click()

    # The prestataire: home, history, reconversions (with an error, then a request).
    log_in(baker)
    page.wait_for_url("**/prestataire/")
    assert page.get_by_test_id("takings-count").inner_text() == "1"
    assert_accessible(page)
    page.goto(f"{base}/prestataire/historique")
    assert page.get_by_test_id("csv-link").is_visible()
    assert_accessible(page)
    page.goto(f"{base}/prestataire/reconversions")
    assert_accessible(page)
    page.get_by_label("Bou'Sols à reconvertir").fill("99")
    page.get_by_role("button", name="Envoyer la demande").click()
    field = page.get_by_label("Bou'Sols à reconvertir")
    assert field.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    page.get_by_label("Bou'Sols à reconvertir").fill("5,00")
    page.get_by_role("button", name="Envoyer la demande").click()
    page.wait_for_url("**/prestataire/reconversions")
    assert page.get_by_role("button", name=re.compile("Annuler la demande")).count() == 2
    assert_accessible(page)
    page.get_by_role("button", name="Se déconnecter").click()

    # The desk: the requests waiting, a refusal without a reason, then an execution.
    log_in(clerk)
    page.get_by_role("link", name="Demandes de reconversion des prestataires").click()
    page.wait_for_url("**/comptoir/reconversions")
    assert_accessible(page)
    page.get_by_role("button", name="Refuser la demande n° 1").click()
    field = page.get_by_label("Motif du refus (demande n° 1)")
    assert field.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    page.get_by_role("button", name="Exécuter la demande n° 2").click()
    page.wait_for_url("**/comptoir/reconversions/2/bordereau")
    assert _plain(page.get_by_test_id("receipt-payout").inner_text()) == "4,75 €"
    assert_accessible(page)
    page.goto(f"{base}/comptoir/reconversions")
    assert_accessible(page)
    assert_clean_console(console)
