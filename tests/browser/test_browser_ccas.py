"""The CCAS's pages in headless Chromium, each checked by axe-core (WCAG 2.1 A/AA),
with the forms showing their errors: home, a programme (form and page), granting,
a voucher, a CSV batch's preview with bad lines, a beneficiary."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import CHROMIUM_ARGS, assert_accessible, assert_clean_console
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser
TODAY = paris_today()


def test_ccas_pages_are_accessible(live, chromium_path, tmp_path):
    from playwright.sync_api import sync_playwright

    base, ledger = live
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    agent = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), agent, name="Aide alimentaire hiver 2026", budget="1000",
        starts_on=TODAY, ends_on=TODAY + dt.timedelta(days=120),
        filieres=["alimentation"], default_validity_days=60, multi_use=True)
    ledger.exchange(agent, "200.00", programme_id=programme.id)
    granted = vouchers.grant(ledger.uow(), agent, beneficiary_ref="D-2026-0001",
                             beneficiary_name="Jeanne Martin", amount="30",
                             programme_id=programme.id)
    vouchers.grant(ledger.uow(), agent, beneficiary_ref="D-2026-0002", amount="20",
                   programme_id=programme.id)
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    vouchers.redeem(ledger.uow(), grocer, code=granted.code, amount="12.50")
    bad_csv = tmp_path / "lot.csv"
    bad_csv.write_text("reference;montant;nom\nD-1;20,00;Paul\nD-2;abc\nD<3;5\nD-1;5\n",
                       encoding="utf-8")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="fr-FR").new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))

        page.goto(f"{base}/ccas/")
        page.get_by_label("Identifiant").fill(agent.username)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url("**/ccas/")
        assert "Aide alimentaire hiver 2026" in page.content()
        assert_accessible(page)

        # The programme form, sent back with an error by its field.
        page.goto(f"{base}/ccas/programmes/nouveau")
        assert_accessible(page)
        page.locator("#name").fill("Aide rentrée")
        page.locator("#budget").fill("500")
        page.locator("#starts_on").fill("31/02/2026")
        page.locator("#ends_on").fill("30/06/2026")
        page.get_by_label("Loisirs et culture").check()
        page.get_by_role("button", name="Créer le programme").click()
        page.wait_for_load_state()
        assert page.locator("#starts_on-error").is_visible()
        assert page.locator("#starts_on").get_attribute("aria-invalid") == "true"
        assert_accessible(page)

        # The programme's page: figures, its vouchers with their cancel buttons.
        page.goto(f"{base}/ccas/programmes/{programme.id}")
        assert page.get_by_test_id("funded-eur").is_visible()
        assert page.get_by_role("button", name=f"Annuler le bon {granted.code}").count() == 1
        assert_accessible(page)

        # Granting, with an error by the amount.
        page.goto(f"{base}/ccas/bons/nouveau")
        assert_accessible(page)
        page.locator("#programme").select_option(str(programme.id))
        page.locator("#beneficiary_ref").fill("D-2026-0003")
        page.locator("#amount").fill("12,345")
        page.get_by_role("button", name="Attribuer le bon").click()
        page.wait_for_load_state()
        assert page.locator("#amount-error").is_visible()
        assert_accessible(page)
        page.locator("#amount").fill("25")
        page.get_by_role("button", name="Attribuer le bon").click()
        page.wait_for_url("**/ccas/bons/*-*")
        assert page.get_by_test_id("print-voucher").is_visible()
        assert_accessible(page)

        # A voucher with a redemption; then the question before cancelling it.
        page.goto(f"{base}/ccas/bons/{granted.code}")
        assert "Épicerie solidaire" in page.content()
        assert_accessible(page)
        page.get_by_role("button", name="Annuler le bon").click()
        page.wait_for_load_state()
        assert page.get_by_test_id("cancel-question").is_visible()
        assert_accessible(page)

        # A CSV batch with bad lines: every line's reason, in words.
        page.goto(f"{base}/ccas/bons/lot")
        assert_accessible(page)
        page.locator("#csv_file").set_input_files(str(bad_csv))
        page.locator("#programme").select_option(str(programme.id))
        page.get_by_role("button", name="Vérifier le fichier").click()
        page.wait_for_load_state()
        assert page.get_by_test_id("bad-line").count() == 3
        assert page.get_by_test_id("confirm-batch").count() == 0
        assert_accessible(page)

        # The beneficiary's page, and its erasure form sent without the box ticked.
        page.goto(f"{base}/ccas/beneficiaires?ref=2026")
        assert_accessible(page)
        page.goto(f"{base}/ccas/beneficiaires/D-2026-0001")
        assert page.get_by_test_id("beneficiary-name").inner_text() == "Jeanne Martin"
        assert_accessible(page)
        page.get_by_role("button", name="Effacer").click()
        page.wait_for_load_state()
        assert page.locator("#confirm-error").is_visible()
        assert_accessible(page)
        browser.close()

    assert ledger.count("vouchers") == 3
    ledger.assert_consistent()
    assert_clean_console(console)
