"""The treasurer's activity report in headless Chromium, axe-core on the page: reached
from the association's home, with its charts and tables; a period too long sent back
with the error announced; a shorter period; a CSV file downloaded."""

from __future__ import annotations

import pytest

from bousol.ledger.association.reports import add_months
from bousol.ledger.kernel.clock import paris_today
from tests.browser.helpers import assert_accessible, assert_clean_console, log_in, plain
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def test_activity_report_page_is_accessible(live, page):
    base, ledger = live
    admin = ledger.user("admin", password=PASSWORD)
    ledger.phase("b2b", True)
    ledger.subsidy("10.00")
    marie = ledger.soliste(name="Marie Lefebvre")
    baker = ledger.prestataire("alimentation", name="Boulangerie du Port")
    bike = ledger.prestataire("mobilite-douce", name="Vélo Côte d'Opale")
    ledger.exchange(marie, "40.00")  # 42,00 B
    ledger.pay(marie, baker, "12.50")
    ledger.pay(baker, bike, "5.00")
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, admin.username, "/admin/", password=PASSWORD)
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Rapports d'activité : masse monétaire, paiements, "
                                   "aide du CCAS").click()
    page.wait_for_url("**/admin/rapports")
    assert page.locator("h1").count() == 1
    assert page.get_by_role("img", name="Masse monétaire et euros qui la couvrent, en fin "
                                        "de mois").is_visible()
    assert page.get_by_role("img", name="Volume des paiements chez les prestataires, "
                                        "par mois").is_visible()
    assert plain(page.get_by_test_id("total-payments").inner_text()) == "17,50 B"
    assert plain(page.get_by_test_id("end-supply").inner_text()) == "42,00 B"
    assert page.get_by_test_id("total-b2b-share").inner_text().replace("\u00a0", " ") \
        == "28,6 %"  # 5,00 / 17,50
    assert page.get_by_test_id("payments-table").locator("tbody tr").count() == 12
    assert_accessible(page)

    # A period of more than 36 months: sent back, the error announced and linked.
    current = paris_today().replace(day=1)
    page.get_by_label("Du mois").fill(f"{add_months(current, -40):%Y-%m}")
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_load_state()
    field = page.get_by_label("Du mois")
    assert field.get_attribute("aria-invalid") == "true"
    assert "36 mois au plus" in page.get_by_role("alert").inner_text()
    assert page.locator("svg.chart").count() == 0
    assert_accessible(page)

    # Three months, then the monthly figures as a file.
    page.get_by_label("Du mois").fill(f"{add_months(current, -2):%Y-%m}")
    page.get_by_label("Au mois (inclus)").fill(f"{current:%Y-%m}")
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("payments-table").locator("tbody tr").count() == 3
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_test_id("csv-mois").click()
    assert download.value.suggested_filename == (
        f"rapport-mois-{add_months(current, -2):%Y-%m}-au-{current:%Y-%m}.csv")
    assert_clean_console(console)
