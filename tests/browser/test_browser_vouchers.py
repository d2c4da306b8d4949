"""The issue's journey in headless Chromium: a CCAS social worker grants a voucher, a
merchant types its code at the till and takes part of it."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import (
    CHROMIUM_ARGS,
    assert_accessible,
    assert_clean_console,
    log_in,
    plain,
)

pytestmark = pytest.mark.browser


def test_ccas_grants_a_voucher_and_a_merchant_takes_part_of_it(live, chromium_path):
    from playwright.sync_api import expect, sync_playwright

    base, ledger = live
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    today = paris_today()
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire hiver 2026", budget="1000",
        starts_on=today, ends_on=today + dt.timedelta(days=90), filieres=["alimentation"],
        default_validity_days=60, multi_use=True)
    ledger.exchange(ccas, "200.00", programme_id=programme.id)
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        office = browser.new_context(locale="fr-FR").new_page()
        till = browser.new_context(locale="fr-FR").new_page()
        console: list[str] = []
        for page in (office, till):
            page.on("console", lambda message: console.append(message.text))

        # The social worker grants 30 B to the file DOS-2026-042.
        log_in(office, base, ccas.username, "/ccas/bons/nouveau")
        office.wait_for_url("**/ccas/bons/nouveau")
        office.get_by_label("Financé par").select_option(str(programme.id))
        office.get_by_label("Référence du bénéficiaire").fill("DOS-2026-042")
        office.get_by_label("Nom (facultatif, visible du CCAS seulement)").fill("Mme Exemple")
        office.get_by_label("Montant en Bou'Sols").fill("30,00")
        office.get_by_role("button", name="Attribuer le bon").click()
        office.wait_for_url("**/ccas/bons/*")
        code = office.get_by_test_id("voucher-code").inner_text().strip()
        assert plain(office.get_by_test_id("voucher-remaining").inner_text()) == "30,00 B"
        assert_accessible(office)

        # At the grocer's till: the code typed by hand, the voucher shown, 12,40 B taken.
        log_in(till, base, grocer.username, "/prestataire/bons")
        till.wait_for_url("**/prestataire/bons")
        till.get_by_label("Code du bon d'aide").fill(code.replace("-", " ").lower())
        till.get_by_role("button", name="Voir le bon").click()
        till.wait_for_url(f"**/prestataire/bons/{code}")
        assert plain(till.get_by_test_id("voucher-remaining").inner_text()) == "30,00 B"
        assert "DOS-2026-042" not in till.content() and "Exemple" not in till.content()
        assert_accessible(till)
        till.get_by_label("Montant de l'achat en Bou'Sols").fill("12,40")
        till.get_by_test_id("redeem").click()
        expect(till.locator(".flash-voucher-taken")).to_be_visible()
        assert plain(till.get_by_test_id("voucher-remaining").inner_text()) == "17,60 B"
        # More than what is left: refused, by the field, nothing taken.
        till.get_by_label("Montant de l'achat en Bou'Sols").fill("20")
        till.get_by_test_id("redeem").click()
        expect(till.locator(".error")).to_contain_text("17,60")
        assert_accessible(till)

        # Back at the CCAS, the voucher shows what is left and the redemption.
        office.reload()
        assert plain(office.get_by_test_id("voucher-remaining").inner_text()) == "17,60 B"
        assert "Épicerie solidaire" in office.content()
        browser.close()

    assert ledger.balance(grocer) == 1240
    ledger.assert_consistent()
    assert_clean_console(console)
