"""The CCAS prints a batch of aid vouchers and reads its programme's report, in
headless Chromium, with axe-core checking both pages against WCAG 2.1 AA."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol.ledger.ccas import voucher_batches, vouchers
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import CHROMIUM_ARGS, assert_accessible, assert_clean_console
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser
TODAY = paris_today()


def test_print_sheet_and_report_are_accessible(live, chromium_path):
    from playwright.sync_api import sync_playwright

    base, ledger = live
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire hiver 2026", budget="1000",
        starts_on=TODAY, ends_on=TODAY + dt.timedelta(days=60),
        filieres=["alimentation"], default_validity_days=60)
    ledger.exchange(ccas, "200.00", programme_id=programme.id)
    lines = "\n".join(f"B-{i};{5 + i},00;Nom {i}" for i in range(9))
    batch = voucher_batches.grant_batch(ledger.uow(), ccas, text=lines, programme_id=programme.id)
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    with ledger.engine.connect() as conn:
        first = vouchers.vouchers_by_ids(conn, ccas, batch.voucher_ids[:1])[0]
    vouchers.redeem(ledger.uow(), grocer, code=first.code, amount="2.50")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="fr-FR").new_page()
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        path = f"/ccas/bons/impression?lot={batch.batch_id}"
        page.goto(f"{base}{path}")
        page.get_by_label("Identifiant").fill(ccas.username)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(f"**{path}")

        assert page.get_by_test_id("voucher-sheet").count() == 2
        assert page.get_by_test_id("voucher").count() == 9
        qr = page.get_by_role("img", name=f"QR code du bon {first.code}")
        assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
        assert page.get_by_test_id("pdf-link").is_visible()
        assert_accessible(page)
        # On paper: the page's header and buttons go, the sheets stay, A4 wide.
        page.emulate_media(media="print")
        assert not page.get_by_test_id("pdf-link").is_visible()
        box = page.get_by_test_id("voucher-sheet").first.bounding_box()
        assert 700 < box["width"] < 730  # 190 mm at 96 dpi
        page.emulate_media(media="screen")

        page.goto(f"{base}/ccas/programmes/{programme.id}/rapport")
        assert page.get_by_test_id("granted").inner_text().replace("\u202f", " ") \
            .replace("\u00a0", " ") == "81,00 B"
        assert page.get_by_role("img", name="Bou'Sols attribués et utilisés, par semaine") \
            .count() == 1
        assert_accessible(page)
        page.get_by_label("Du").fill("31/13/2026")
        page.get_by_role("button", name="Afficher").click()
        page.wait_for_load_state()
        assert page.locator(".error-summary").is_visible()
        assert_accessible(page)
        browser.close()
    assert_clean_console(console)
