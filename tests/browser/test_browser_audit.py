"""The audit trail in headless Chromium at 360 px (issue 13): cards that say what was
done to which record, no horizontal scroll, axe-core clean."""

from __future__ import annotations

import pytest

from tests.browser.helpers import assert_accessible, log_in
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def test_the_audit_trail_fits_a_phone(live, page):
    base, ledger = live
    admin = ledger.user("admin", password=PASSWORD)
    ledger.subsidy("100.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "20.00")
    ledger.pay(marie, baker, "2.50")
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, base, admin.username, "/admin/audit", password=PASSWORD)
    page.wait_for_url("**/admin/audit")
    cards = page.get_by_test_id("audit-record")
    assert cards.count() >= 3
    assert page.get_by_test_id("audit-action").first.inner_text() == "Connexion"
    assert "idempotency_keys" not in page.locator("[data-testid=audit-what]").all_inner_texts()
    page.get_by_role("button", name="Vérifier la chaîne").click()
    page.get_by_test_id("chain-check").wait_for()
    page.locator("details summary").first.click()  # the technical detail, opened, fits too
    wide = page.evaluate(  # what overflows, should it ever again
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 361)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 10)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, wide
    assert_accessible(page)
