"""The treasurer's SEPA payout pages in a browser, with axe: the list with a prestataire
missing its IBAN, a batch prepared then released by a second person, marking it paid,
and an IBAN typed wrong at the desk."""

from __future__ import annotations

import pytest

from bousol.ledger.desk import payouts
from tests.browser.helpers import assert_accessible
from tests.helpers import BANK, IBAN_FR, PASSWORD, set_iban

pytestmark = pytest.mark.browser


def test_payout_pages_are_accessible(live, page):
    base, ledger = live
    ledger.subsidy("10.00")
    marie = ledger.soliste()
    baker = ledger.prestataire(name="Boulangerie du Portel")
    florist = ledger.prestataire(name="Fleurs sans IBAN")
    ledger.exchange(marie, "100.00", tender="card")
    for shop in (baker, florist):
        ledger.pay(marie, shop, "20.00")
        ledger.reconvert(shop, "20.00")
    set_iban(ledger, baker.party_code, IBAN_FR)
    admin = ledger.user("admin", password=PASSWORD)
    page.goto(f"{base}/connexion")
    page.get_by_label("Identifiant").fill(admin.username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Virements de reconversion (SEPA)").click()
    page.wait_for_url("**/admin/virements")
    assert page.get_by_test_id("missing-iban").count() == 1
    assert_accessible(page)
    page.get_by_role("button", name="Préparer un lot").click()
    page.wait_for_url("**/admin/virements/lots/*")
    assert page.get_by_test_id("second-person").count() == 1  # the preparer pays nothing
    assert page.get_by_role("button", name="Marquer comme payé").count() == 0
    assert_accessible(page)
    # A batch the desk prepared: the admin is the second person.
    batch_url = page.url
    batch_id = int(batch_url.rsplit("/", 1)[1])
    payouts.cancel(ledger.uow(), BANK, batch_id)
    clerk = ledger.user("bank")
    made = payouts.create_batch(ledger.uow(), clerk)
    page.goto(f"{base}/admin/virements/lots/{made.id}")
    page.get_by_role("button", name="Libérer le lot").click()  # box not ticked
    assert page.get_by_label("J'ai vérifié les bénéficiaires, les IBAN et les montants de ce lot"
                             ).get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    page.get_by_label("J'ai vérifié les bénéficiaires, les IBAN et les montants de ce lot").check()
    page.get_by_role("button", name="Libérer le lot").click()
    page.wait_for_url(f"**/admin/virements/lots/{made.id}")
    assert page.get_by_role("link", name="Télécharger le fichier SEPA (pain.001)").count() == 1
    page.get_by_role("button", name="Marquer comme payé").click()  # box not ticked
    assert page.get_by_label("Je confirme que la banque a exécuté les virements de ce lot"
                             ).get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    page.goto(f"{base}/comptoir/prestataire/{florist.party_code}/banque")
    page.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 188")
    page.get_by_role("button", name="Demander ce changement").click()
    field = page.get_by_label("IBAN", exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    assert "clé de contrôle" in page.locator(
        f"#{field.get_attribute('aria-describedby')}").inner_text()
    assert_accessible(page)
