"""The accounting page in headless Chromium, checked with axe-core (WCAG): the treasurer
changes an account of the mapping (and is told when it is wrong), asks for a reversed
period (and is told), then downloads the FEC of the year."""

from __future__ import annotations

from pathlib import Path

import pytest

from bousol.ledger.association import fec
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import assert_accessible, assert_clean_console, log_in

pytestmark = pytest.mark.browser
DESK_CASH = "Caisse du comptoir (espèces et chèques)"


def test_accounting_page_is_accessible_and_works(live, page, tmp_path):
    base, ledger = live
    ledger.subsidy("100.00")
    marie = ledger.soliste(name="Marie Lefebvre")
    ledger.exchange(marie, "20.00", tender="cash")
    admin = ledger.user("admin")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, admin.username, "/admin/")
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Comptabilité : export FEC et plan de correspondance").click()
    page.wait_for_url("**/admin/comptabilite")
    assert page.get_by_role("heading", level=1).inner_text() == "Comptabilité : export FEC"
    assert_accessible(page)

    # A wrong number: the message is tied to the field, nothing is saved.
    page.get_by_label(f"Numéro de compte — {DESK_CASH}", exact=True).fill("5A1")
    page.get_by_role("button", name=f"Enregistrer — {DESK_CASH}", exact=True).click()
    page.wait_for_load_state()
    field = page.get_by_label(f"Numéro de compte — {DESK_CASH}", exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    assert "commençant par 3 chiffres" in page.locator(".error").first.inner_text()
    assert_accessible(page)

    # The right one.
    field.fill("531")
    page.get_by_label(f"Intitulé du compte — {DESK_CASH}", exact=True).fill("Caisse G1")
    page.get_by_role("button", name=f"Enregistrer — {DESK_CASH}", exact=True).click()
    page.wait_for_url("**/admin/comptabilite*")
    assert "531" in page.get_by_role("status").inner_text()
    assert page.get_by_test_id("number-system:desk_cash").inner_text() == "531"
    assert_accessible(page)

    # A period the wrong way round: the form says so.
    page.get_by_label("Du", exact=True).fill("2026-12-31")
    page.get_by_label("Au (inclus)", exact=True).fill("2026-01-01")
    page.get_by_role("button", name="Télécharger le FEC").click()
    page.wait_for_load_state()
    assert page.get_by_label("Au (inclus)", exact=True).get_attribute("aria-invalid") == "true"
    assert "précède" in page.get_by_role("alert").first.inner_text() + page.locator(
        "#au-error").inner_text()
    assert_accessible(page)

    # This year to today: the file, named after the SIREN and the period's last day.
    today = paris_today()
    page.get_by_label("Du", exact=True).fill(f"{today.year}-01-01")
    page.get_by_label("Au (inclus)", exact=True).fill(today.isoformat())
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Télécharger le FEC").click()
    download = download_info.value
    assert download.suggested_filename == f"999999998FEC{today:%Y%m%d}.txt"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    text = Path(target).read_bytes().decode("utf-8")
    assert fec.check(text) == []
    assert "\t531\tCaisse G1\t" in text  # the exchange's cash, on the treasurer's account
    assert "Marie" not in text
    assert_clean_console(console)
