"""Collegial decisions in headless Chromium, axe-core on every page: a member of the
collective opens a motion from the list, votes "Pour" with the keyboard, changes to
"Contre", and sees the participation; the proposal form with an error; the admin's
pages (seats, settings) and a closed motion's results."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bousol.ledger.association import decisions
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.actors import SYSTEM
from tests.browser.helpers import assert_accessible, assert_clean_console, log_in
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def _collective(ledger):
    admin = ledger.user("admin", password=PASSWORD)
    marie = ledger.soliste(name="Marie Lefebvre", password=PASSWORD)
    baker = ledger.prestataire(name="Boulangerie du Vieux Boulogne", password=PASSWORD)
    for who in (marie, baker):
        decisions.add_member(ledger.uow(), SYSTEM, who.username)
    motion_id = decisions.propose(
        ledger.uow(), admin, title="Commission de reconversion à 4 %",
        body="Les commerçants demandent une commission plus basse.",
        closes_at=clock.now() + dt.timedelta(days=3), effect="setting",
        setting_key="reconversion.fee_bp", setting_value="400")
    return admin, marie, baker, motion_id


def test_member_votes_with_the_keyboard_and_changes_the_vote(live, page):
    base, ledger = live
    _admin, marie, _baker, motion_id = _collective(ledger)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, marie.username, "/soliste/", PASSWORD)
    page.wait_for_url("**/soliste/")
    assert "1 décision attend votre vote" in page.get_by_test_id(
        "collective-link").inner_text()
    page.get_by_role("link", name="Décisions du collectif de gestion").click()
    page.wait_for_url("**/collectif/")
    assert_accessible(page)

    page.get_by_role("link", name="Commission de reconversion à 4 %").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/collectif/motions/{motion_id}")
    assert page.locator("h1").count() == 1
    assert "(heure de Paris)" in page.get_by_test_id("closes-at").inner_text()
    assert page.get_by_test_id("my-vote").inner_text() == "Vous n'avez pas voté."
    assert "0 membre sur 2 a voté" in page.get_by_test_id("participation").inner_text()
    assert_accessible(page)

    # The radios are a group named by its legend; Space ticks one, Tab reaches the button.
    group = page.get_by_role("group", name=f"Votre vote sur la décision n° {motion_id}")
    assert group.get_by_role("radio").count() == 3
    group.get_by_role("radio", name="Pour").focus()
    page.keyboard.press("Space")
    assert group.get_by_role("radio", name="Pour").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Voter"
    page.keyboard.press("Enter")
    page.get_by_text("Votre vote est enregistré : Pour.").wait_for()  # the page after the redirect
    assert page.get_by_test_id("my-vote").inner_text().startswith("Vous avez voté : Pour")
    assert "1 membre sur 2 a voté (50 %)" in page.get_by_test_id(
        "participation").inner_text()
    assert group.get_by_role("radio", name="Pour").is_checked()
    assert_accessible(page)

    # Changing: the arrow key moves to "Contre" and ticks it.
    group.get_by_role("radio", name="Pour").focus()
    page.keyboard.press("ArrowDown")
    assert group.get_by_role("radio", name="Contre").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Changer mon vote"
    page.keyboard.press("Enter")
    page.get_by_text("Votre vote est changé : Contre.").wait_for()  # the page after the redirect
    assert page.get_by_test_id("my-vote").inner_text().startswith("Vous avez voté : Contre")
    assert "1 membre sur 2 a voté (50 %)" in page.get_by_test_id(
        "participation").inner_text()
    assert page.get_by_test_id("results-table").count() == 0  # totals after the close
    assert_accessible(page)
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT choice FROM votes")).scalars().all() == ["against"]

    # The proposal form, sent with an error.
    page.get_by_role("link", name="Proposer une décision").click()
    page.wait_for_url("**/collectif/motions/nouvelle")
    assert_accessible(page)
    page.get_by_label("Titre de la décision").fill("Ouvrir la phase CCAS")
    page.get_by_label("Changer un réglage").check()
    page.get_by_label("Réglage à changer").select_option("phase.ccas")
    page.get_by_label("Nouvelle valeur du réglage").fill("peut-être")
    page.get_by_role("button", name="Soumettre au vote").click()
    field = page.get_by_label("Nouvelle valeur du réglage")
    assert field.get_attribute("aria-invalid") == "true"
    assert "on ou off" in page.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()
    assert page.get_by_role("alert").is_visible()
    assert_accessible(page)
    assert_clean_console(console)


def test_admin_pages_and_results_are_accessible(live, page):
    base, ledger = live
    admin, marie, baker, motion_id = _collective(ledger)
    decisions.vote(ledger.uow(), marie, motion_id, "for")
    decisions.vote(ledger.uow(), baker, motion_id, "abstain")
    with ledger.engine.begin() as conn:  # the vote's date has passed
        now = clock.now()
        conn.execute(sa.text("UPDATE motions SET opens_at = :o, closes_at = :c"),
                     {"o": now - dt.timedelta(days=5), "c": now - dt.timedelta(minutes=1)})
        conn.execute(sa.text("UPDATE collective_members SET since = :o"),  # seated then
                     {"o": now - dt.timedelta(days=5)})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, admin.username, "/admin/", PASSWORD)
    page.wait_for_url("**/admin/")
    page.get_by_role("link", name="Membres du collectif").click()
    page.wait_for_url("**/admin/collectif")
    assert_accessible(page)
    page.get_by_label("Identifiant de la personne").fill("nobody")
    page.get_by_role("button", name="Ajouter au collectif").click()
    assert page.get_by_label("Identifiant de la personne").get_attribute("aria-invalid") == "true"
    assert_accessible(page)

    page.goto(f"{base}/collectif/motions/{motion_id}")
    page.get_by_role("button", name="Clore").click()
    page.get_by_text("Vote clos : la décision est adoptée.").wait_for()  # after the redirect
    assert page.get_by_test_id("total-for").inner_text() == "1"
    assert page.get_by_role("rowheader", name="Prestataires").count() == 1
    assert_accessible(page)

    page.goto(f"{base}/admin/reglages")
    assert page.get_by_test_id("value-reconversion.fee_bp").inner_text() == "4\u00a0%"
    page.get_by_role("link", name=f"Décision n° {motion_id}").click()
    page.wait_for_url(f"**/collectif/motions/{motion_id}")
    page.go_back()
    assert_accessible(page)
    assert_clean_console(console)
