"""Members and colleges in headless Chromium, axe-core on every page: the members list
(filtered), the memberships lapsing this month before and after sending the reminders,
the kept e-mail, a new partner (with an error shown) and its page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bousol.ledger.association import membership
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import assert_accessible, assert_clean_console, log_in
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def test_members_and_lapsing_pages_are_accessible(live, page):
    base, ledger = live
    admin = ledger.user("admin", password=PASSWORD)
    marie = ledger.soliste(name="Marie Lefebvre")
    lucie = ledger.soliste(name="Lucie Caron")
    ledger.prestataire(name="Boulangerie du Vieux Boulogne")
    month_end = membership.month_bounds(paris_today())[1]
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET membership_until = :u, email = :e "
                             "WHERE code = :c"),
                     [{"u": month_end, "e": "marie@example.org", "c": marie.party_code},
                      {"u": month_end, "e": None, "c": lucie.party_code}])
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, admin.username, "/admin/", password=PASSWORD)
    page.get_by_role("link", name="Adhérents et collèges").click()
    page.wait_for_url("**/admin/adherents")
    assert page.locator("h1").count() == 1
    assert_accessible(page)
    page.get_by_label("Collège", exact=True).select_option("solistes")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**/admin/adherents?*")
    assert page.get_by_test_id("members-count").inner_text() == "2 adhérents"
    assert_accessible(page)

    page.get_by_role("link", name="Adhésions qui prennent fin ce mois-ci et rappels").click()
    page.wait_for_url("**/admin/adherents/echeances")
    assert page.get_by_text("sans adresse e-mail").is_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Envoyer les rappels").click()
    page.wait_for_url("**/admin/adherents/echeances")
    assert "Rappels : 1 envoyé," in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("reminders-sent").is_visible()
    assert_accessible(page)

    page.get_by_role("link", name="Lire les courriels envoyés").click()
    page.wait_for_url("**/admin/courriels")
    assert "Bonjour Marie Lefebvre," in page.get_by_test_id("mail-body").inner_text()
    assert_accessible(page)

    page.goto(f"{base}/admin/partenaires/nouveau")
    page.get_by_label("Nom", exact=True).fill("Crédit Municipal de Boulogne-sur-Mer")
    page.get_by_label("Catégorie", exact=True).select_option("credit_municipal")
    page.get_by_label("Courriel", exact=True).fill("pas-une-adresse")
    page.get_by_role("button", name="Enregistrer le partenaire").click()
    field = page.get_by_label("Courriel", exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    field.fill("direction@cm.example")
    page.get_by_role("button", name="Enregistrer le partenaire").click()
    page.wait_for_url("**/admin/partenaires/L-000001")
    assert_accessible(page)
    page.get_by_label("Chèque").check()
    page.get_by_role("button", name="Enregistrer la cotisation").click()
    page.wait_for_url("**/admin/partenaires/L-000001")
    assert page.get_by_test_id("membership-status").inner_text() in ("à jour",
                                                                     "expire ce mois-ci")
    assert_accessible(page)
    assert_clean_console(console)
