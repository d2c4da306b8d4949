"""Approval and the directory in headless Chromium, axe-core on every page: the
application form (with an error shown), the applicant's status page, the directory and
one of its entries, the association's list and detail pages (with an error shown)."""

from __future__ import annotations

import pytest

from bousol.ledger.kernel.actors import Actor
from bousol.ledger.merchants import approval
from bousol.ledger.models import Role
from tests.browser.helpers import assert_accessible, assert_clean_console
from tests.helpers import PASSWORD, application

pytestmark = pytest.mark.browser


def _log_in(tab, base: str, username: str) -> None:
    tab.goto(f"{base}/connexion")
    tab.get_by_label("Identifiant").fill(username)
    tab.get_by_label("Mot de passe").fill(PASSWORD)
    tab.get_by_role("button", name="Se connecter").click()
    tab.wait_for_load_state()


def _error_of(tab, label: str) -> str:
    field = tab.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true", label
    return tab.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()


def test_approval_and_directory_pages_are_accessible(live, page):
    base, ledger = live
    admin = ledger.user("admin", password=PASSWORD)
    shown = approval.apply(ledger.uow(), username="velo", password=PASSWORD, submit=True,
                           **application(name="Vélo Côte d'Opale", filiere="mobilite-douce",
                                         commune="Boulogne-sur-Mer"))
    approval.approve(ledger.uow(), admin, shown.party_code)
    approval.update_public_profile(
        ledger.uow(), Actor(shown.user_id, Role.PRESTATAIRE, shown.party_id,
                            shown.party_code, shown.username),
        opening_hours="Mardi–samedi : 9 h – 18 h", description="Réparation et location.")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    # The application, from the footer of any page; sent with a wrong SIRET first.
    page.goto(f"{base}/connexion")
    page.get_by_role("link", name="Devenir prestataire").click()
    page.wait_for_url("**/agrement")
    assert page.locator("h1").count() == 1
    assert_accessible(page)
    page.get_by_label("Nom de l'entreprise ou de la structure", exact=True).fill("Le Fournil")
    page.get_by_label("Forme juridique").select_option("ei")
    page.get_by_label("SIRET (14 chiffres)").fill("732 829 320 00075")
    page.get_by_label("Adresse", exact=True).fill("3 quai Gambetta")
    page.get_by_label("Commune", exact=True).fill("Boulogne-sur-Mer")
    page.get_by_label("Filière", exact=True).select_option("alimentation")
    page.get_by_label("Nom et prénom de la personne à contacter").fill("Hélène Caron")
    page.get_by_label("Téléphone").fill("06 98 76 54 32")
    page.get_by_label("Courriel").fill("helene@fournil.example")
    page.get_by_label("IBAN du compte de l'entreprise").fill(
        "FR76 3000 6000 0112 3456 7890 189")
    page.get_by_label("Identifiant de connexion").fill("fournil")
    page.get_by_label("Mot de passe (8 caractères au moins)").fill(PASSWORD)
    page.get_by_label("Mot de passe, une seconde fois").fill(PASSWORD)
    page.get_by_role("button", name="Envoyer ma demande").click()
    assert "clé de contrôle" in _error_of(page, "SIRET (14 chiffres)")
    assert "charte" in _error_of(page, "J'ai lu la charte du Bou'Sol et l'accepte au nom de "
                                       "l'entreprise ou de la structure")
    assert page.get_by_role("alert").is_visible()
    assert_accessible(page)
    page.get_by_label("SIRET (14 chiffres)").fill("732 829 320 00074")
    page.get_by_label("Mot de passe (8 caractères au moins)").fill(PASSWORD)
    page.get_by_label("Mot de passe, une seconde fois").fill(PASSWORD)
    page.get_by_label("J'ai lu la charte du Bou'Sol et l'accepte au nom de l'entreprise ou "
                      "de la structure").check()
    page.get_by_role("button", name="Envoyer ma demande").click()
    page.wait_for_url("**/prestataire/agrement")
    assert page.get_by_test_id("approval-status").inner_text() == (
        "Demande envoyée, en cours d'examen")
    assert_accessible(page)
    page.goto(f"{base}/prestataire/fiche")
    assert_accessible(page)
    page.get_by_role("button", name="Se déconnecter").click()

    # The directory and one entry, without logging in.
    page.goto(f"{base}/annuaire")
    assert_accessible(page)
    page.get_by_label("Filière").select_option("mobilite-douce")
    page.get_by_role("button", name="Rechercher").click()
    page.wait_for_url("**/annuaire?*")
    assert page.get_by_test_id("directory-count").inner_text() == "1 prestataire"
    page.get_by_role("link", name="Vélo Côte d'Opale").click()
    page.wait_for_url(f"**/annuaire/{shown.party_code}")
    assert page.get_by_test_id("opening-hours").inner_text() == "Mardi–samedi : 9 h – 18 h"
    assert_accessible(page)

    # The association: the list, the detail, a refusal without reason, then approval.
    _log_in(page, base, admin.username)
    page.get_by_role("link", name="Agrément des prestataires").click()
    page.wait_for_url("**/admin/prestataires")
    assert_accessible(page)
    page.get_by_role("link", name="Le Fournil").click()
    page.wait_for_url("**/admin/prestataires/P-*")
    assert_accessible(page)
    page.get_by_role("button", name="Refuser la demande").click()
    assert "Motif obligatoire" in _error_of(page, "Motif du refus (le demandeur le verra)")
    assert_accessible(page)
    page.get_by_role("button", name="Agréer ce prestataire").click()
    page.wait_for_url("**/admin/prestataires/P-*")
    assert page.get_by_test_id("approval-status").inner_text() == "Agréé"
    assert_accessible(page)
    page.get_by_role("button", name="Se déconnecter").click()

    # The applicant sees the decision.
    _log_in(page, base, "fournil")
    page.goto(f"{base}/prestataire/agrement")
    assert page.get_by_test_id("approval-status").inner_text() == "Agréé"
    assert page.get_by_role("cell", name=f"l'association ({admin.username})").is_visible()
    assert_accessible(page)
    assert_clean_console(console)
