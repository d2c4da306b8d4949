"""Issue 13's new pages in headless Chromium, axe-core WCAG 2.1 AA on each page reached:
a soliste registered at the desk chooses a first password with the printed one-time
code; a forgotten password reset from the e-mailed link, then changed in the account;
the two-person rules (an IBAN typed at the desk confirmed by the prestataire; a payout
batch prepared by one user, released, downloaded and paid by another); a closed day
reopened by an admin. The soliste's and prestataire's pages are checked at 360 px."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from bousol.ledger.desk import iban_changes
from tests.browser.helpers import assert_accessible, assert_clean_console, log_in, plain
from tests.helpers import BANK, PASSWORD

pytestmark = pytest.mark.browser
IBAN_OLD = "FR7630006000011234567890189"
IBAN_NEW = "DE89370400440532013000"
IBAN_NEW_SHOWN = "DE89 3704 0044 0532 0130 00"
PHONE = {"width": 360, "height": 740}


def _console(tab) -> list[str]:
    messages: list[str] = []
    tab.on("console", lambda message: messages.append(message.text))
    return messages


def _log_out(tab) -> None:
    tab.get_by_role("button", name="Se déconnecter").click()
    tab.wait_for_url("**/connexion")


def _fits_the_phone(tab) -> None:
    wide = tab.evaluate(  # what overflows, should it ever again
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 361)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 10)")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 360, wide


def _with_email(ledger, actor, email: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET email = :e WHERE code = :c"),
                     {"e": email, "c": actor.party_code})


def _register(tab, name: str, phone: str) -> None:
    tab.get_by_label("Nom et prénom").fill(name)
    tab.get_by_label("Téléphone").fill(phone)
    tab.get_by_label("La personne a lu et accepte la charte du Bou'Sol").check()


def test_desk_registration_then_first_password_then_login(live, page):
    base, ledger = live
    clerk = ledger.user("bank", password=PASSWORD)
    console = _console(page)

    log_in(page, base, clerk.username, "/comptoir/adherents/nouveau", password=PASSWORD)
    page.wait_for_url("**/comptoir/adherents/nouveau")
    assert_accessible(page)
    _register(page, "Camille Fournier", "06 12 34 56 78")
    page.get_by_role("button", name="Inscrire et encaisser la cotisation").click()
    sheet = page.get_by_role("heading", name="Fiche d'adhésion au Bou'Sol")
    sheet.wait_for()
    username = page.get_by_test_id("username").inner_text().strip()
    code = page.get_by_test_id("first-code").inner_text().strip()
    member = page.get_by_test_id("member-code").inner_text().strip()
    assert username and len(code) >= 6 and member.startswith("S-")
    assert "/premier-mot-de-passe" in page.get_by_role("article").inner_text()
    assert_accessible(page)

    # The same name and phone again: the desk is warned, and led to the existing file.
    page.goto(f"{base}/comptoir/adherents/nouveau")
    _register(page, "Camille Fournier", "0612345678")
    page.get_by_role("button", name="Inscrire et encaisser la cotisation").click()
    warning = page.get_by_test_id("possible-duplicate")
    warning.wait_for()
    assert "Cette personne est peut-être déjà adhérente" in warning.inner_text()
    assert page.get_by_role("button", name=re.compile("C'est une autre personne")).count() == 1
    assert_accessible(page)
    page.get_by_test_id("duplicate-link").click()
    page.wait_for_url(f"**/comptoir/change/{member}")
    assert_accessible(page)
    with ledger.engine.connect() as conn:  # the warning registered nobody
        assert conn.execute(sa.text("SELECT count(*) FROM parties WHERE name = :n"),
                            {"n": "Camille Fournier"}).scalar_one() == 1
    _log_out(page)

    # The soliste, on a phone, with the sheet in hand.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/premier-mot-de-passe")
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_label("Identifiant (sur votre fiche d'adhésion)").fill(username)
    page.get_by_label("Code à usage unique (sur votre fiche d'adhésion)").fill(code)
    page.get_by_label("Mot de passe choisi (8 caractères au moins)").fill("mon-nouveau-secret")
    page.get_by_label("Le même mot de passe, une seconde fois").fill("mon-nouveau-secreT")
    page.get_by_role("button", name="Enregistrer mon mot de passe").click()
    confirm = page.get_by_label("Le même mot de passe, une seconde fois")
    assert confirm.get_attribute("aria-invalid") == "true"
    assert "diffèrent" in page.locator(f"#{confirm.get_attribute('aria-describedby')}") \
        .inner_text()
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_label("Mot de passe choisi (8 caractères au moins)").fill("mon-nouveau-secret")
    confirm.fill("mon-nouveau-secret")
    page.get_by_role("button", name="Enregistrer mon mot de passe").click()
    page.wait_for_url("**/connexion")
    assert page.get_by_text("Mot de passe enregistré").is_visible()
    assert_accessible(page)

    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill("mon-nouveau-secret")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/soliste/")
    assert plain(page.get_by_test_id("balance-bsol").inner_text()) == "0,00 B"
    assert_clean_console(console)


def _reset_link(ledger, email: str) -> str:
    with ledger.engine.connect() as conn:
        bodies = conn.execute(sa.text(
            "SELECT body FROM mail_messages WHERE to_address = :a ORDER BY id"),
            {"a": email}).scalars().all()
    assert len(bodies) == 1, bodies
    links = re.findall(r"https?://\S+/mot-de-passe/[A-Za-z0-9_-]+", bodies[0])
    assert len(links) == 1, bodies[0]
    return links[0]


def test_forgotten_password_then_changed_in_the_account(live, page):
    base, ledger = live
    marie = ledger.soliste(name="Marie Lefebvre", password=PASSWORD)
    _with_email(ledger, marie, "marie@example.org")
    console = _console(page)
    page.set_viewport_size(PHONE)

    page.goto(f"{base}/connexion")
    page.get_by_role("link", name=re.compile("Mot de passe oublié")).click()
    page.wait_for_url("**/mot-de-passe-oublie")
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_label("L'adresse e-mail de votre compte").fill("Marie@Example.org")
    page.get_by_role("button", name="Recevoir le lien").click()
    page.wait_for_url("**/mot-de-passe-oublie")
    assert page.get_by_text("un courriel vient d'y partir").is_visible()
    assert_accessible(page)

    link = _reset_link(ledger, "marie@example.org")
    page.goto(link)
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_label("Nouveau mot de passe (8 caractères au moins)").fill("oublie-puis-retrouve")
    page.get_by_label("Nouveau mot de passe, une seconde fois").fill("oublie-puis-retrouve")
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url("**/soliste/")
    assert page.get_by_text("Nouveau mot de passe enregistré").is_visible()
    _log_out(page)

    # The link served once; the old password no longer opens the account, the new one does.
    page.goto(link)
    assert page.get_by_test_id("reset-invalid").is_visible()
    assert_accessible(page)
    log_in(page, base, marie.username, "/soliste/", password=PASSWORD)
    assert "incorrect" in page.locator("#password-error").inner_text()
    page.get_by_label("Mot de passe").fill("oublie-puis-retrouve")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/soliste/")

    # And changed again in the account: a wrong current password first.
    page.goto(f"{base}/compte/mot-de-passe")
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_label("Mot de passe actuel").fill("pas-le-bon-mot")
    page.get_by_label("Nouveau mot de passe (8 caractères au moins)").fill("troisieme-secret")
    page.get_by_label("Nouveau mot de passe, une seconde fois").fill("troisieme-secret")
    page.get_by_role("button", name="Changer le mot de passe").click()
    current = page.get_by_label("Mot de passe actuel")
    assert current.get_attribute("aria-invalid") == "true"
    assert "incorrect" in page.locator(f"#{current.get_attribute('aria-describedby')}") \
        .inner_text()
    assert_accessible(page)
    _fits_the_phone(page)
    current.fill("oublie-puis-retrouve")
    page.get_by_label("Nouveau mot de passe (8 caractères au moins)").fill("troisieme-secret")
    page.get_by_label("Nouveau mot de passe, une seconde fois").fill("troisieme-secret")
    page.get_by_role("button", name="Changer le mot de passe").click()
    page.wait_for_url("**/compte/mot-de-passe")
    assert page.get_by_text("Mot de passe changé").is_visible()
    assert_accessible(page)
    _log_out(page)
    log_in(page, base, marie.username, "/soliste/", password="troisieme-secret")
    page.wait_for_url("**/soliste/")
    # A used reset link answers 410 and a wrong password 403 or 422, on purpose.
    assert_clean_console([m for m in console if "status of 410" not in m
                          and "status of 403" not in m])


def _iban_in_force(ledger, code: str) -> str | None:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT iban FROM parties WHERE code = :c"),
                            {"c": code}).scalar_one()


def _iban_mails(ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM mail_messages WHERE kind = 'iban_change' "
            "AND to_address = 'boulangerie@example.org'")).scalar_one()


def test_iban_typed_at_the_desk_takes_effect_when_the_prestataire_confirms(live, page):
    base, ledger = live
    clerk = ledger.user("bank", password=PASSWORD)
    baker = ledger.prestataire(name="Boulangerie du Port", password=PASSWORD)
    _with_email(ledger, baker, "boulangerie@example.org")
    asked = iban_changes.request_change(ledger.uow(), BANK, baker.party_code, IBAN_OLD)
    iban_changes.confirm(ledger.uow(), ledger.user("admin"), asked.change_id)
    mails_before = _iban_mails(ledger)
    console = _console(page)

    log_in(page, base, clerk.username, f"/comptoir/prestataire/{baker.party_code}/banque",
           password=PASSWORD)
    page.wait_for_url(f"**/comptoir/prestataire/{baker.party_code}/banque")
    assert plain(page.get_by_test_id("current-iban").inner_text()) == \
        "FR76 3000 6000 0112 3456 7890 189"
    page.get_by_label("IBAN", exact=True).fill("DE89 3704 0044 0532 0130 01")  # a typo
    page.get_by_role("button", name="Demander ce changement").click()
    field = page.get_by_label("IBAN", exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    field.fill(IBAN_NEW_SHOWN.lower())
    page.get_by_role("button", name="Demander ce changement").click()
    page.get_by_test_id("iban-change-waiting").wait_for()
    assert IBAN_NEW_SHOWN in plain(page.get_by_test_id("iban-change-waiting").inner_text())
    assert page.get_by_text("Nouvel IBAN de Boulangerie du Port saisi").is_visible()
    assert _iban_in_force(ledger, baker.party_code) == IBAN_OLD  # the clerk's word alone
    assert _iban_mails(ledger) == mails_before + 1  # the prestataire is told by e-mail
    assert_accessible(page)
    _log_out(page)

    # The prestataire, on its phone, finds the waiting change in its menu and confirms.
    page.set_viewport_size(PHONE)
    log_in(page, base, baker.username, "/prestataire/", password=PASSWORD)
    page.wait_for_url("**/prestataire/")
    page.get_by_role("navigation", name="Mon espace").get_by_role(
        "link", name="IBAN", exact=True).click()
    page.wait_for_url("**/prestataire/banque")
    waiting = page.get_by_test_id("iban-change-waiting")
    assert IBAN_NEW_SHOWN in plain(waiting.inner_text())
    assert clerk.username in waiting.inner_text()
    assert plain(page.get_by_test_id("current-iban").inner_text()) == \
        "FR76 3000 6000 0112 3456 7890 189"
    assert_accessible(page)
    _fits_the_phone(page)
    page.get_by_role("button", name="Confirmer ce nouvel IBAN").click()
    page.wait_for_url("**/prestataire/banque")
    assert page.get_by_text("Nouvel IBAN confirmé").is_visible()
    assert plain(page.get_by_test_id("current-iban").inner_text()) == IBAN_NEW_SHOWN
    assert page.get_by_test_id("iban-change-waiting").count() == 0
    assert page.get_by_text("Aucun changement d'IBAN en attente.").is_visible()
    assert page.get_by_role("cell", name=re.compile(f"confirmé par {baker.username}")) \
        .count() == 1
    assert_accessible(page)
    _fits_the_phone(page)
    assert _iban_in_force(ledger, baker.party_code) == IBAN_NEW
    # The wrong IBAN answered 422, on purpose (assert_clean_console lets it through).
    assert_clean_console(console)


def test_a_payout_batch_is_released_downloaded_and_paid_by_a_second_person(
        live, page, tmp_path):
    base, ledger = live
    ledger.subsidy("100.00")
    marie = ledger.soliste()
    baker = ledger.prestataire(name="Boulangerie du Port")
    ledger.exchange(marie, "100.00", tender="card")
    ledger.pay(marie, baker, "40.00")
    ledger.reconvert(baker, "40.00")
    owed = ledger.balance(baker, "EUR")
    assert owed > 0
    asked = iban_changes.request_change(ledger.uow(), BANK, baker.party_code, IBAN_OLD)
    iban_changes.confirm(ledger.uow(), ledger.user("admin"), asked.change_id)
    clerk = ledger.user("bank", password=PASSWORD)
    treasurer = ledger.user("admin", password=PASSWORD)
    console = _console(page)

    log_in(page, base, clerk.username, "/admin/virements", password=PASSWORD)
    page.wait_for_url("**/admin/virements")
    page.get_by_role("button", name="Préparer un lot").click()
    page.wait_for_url("**/admin/virements/lots/*")
    batch_url = page.url
    assert page.get_by_test_id("batch-status").inner_text().startswith("préparé")
    assert "une autre personne doit le vérifier et le libérer" in \
        page.get_by_test_id("second-person").inner_text()
    for name in ("Libérer le lot", "Marquer comme payé"):
        assert page.get_by_role("button", name=name).count() == 0, name
    assert page.get_by_role("link", name=re.compile("Télécharger le fichier SEPA")).count() == 0
    assert_accessible(page)
    _log_out(page)

    log_in(page, base, treasurer.username, "/admin/virements", password=PASSWORD)
    page.wait_for_url("**/admin/virements")
    page.get_by_role("link", name=re.compile("Voir le lot")).click()
    page.wait_for_url(batch_url)
    assert page.get_by_role("link", name=re.compile("Télécharger le fichier SEPA")).count() == 0
    page.get_by_role("button", name="Libérer le lot").click()  # the box not ticked
    box = page.get_by_label("J'ai vérifié les bénéficiaires, les IBAN et les montants de ce lot")
    assert box.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    box.check()
    page.get_by_role("button", name="Libérer le lot").click()
    page.wait_for_url(batch_url)
    assert page.get_by_test_id("batch-status").inner_text().startswith("libéré")
    assert page.get_by_text("Lot libéré").is_visible()
    assert_accessible(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Télécharger le fichier SEPA (pain.001)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".xml")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    document = target.read_text(encoding="utf-8")
    assert "pain.001" in document and IBAN_OLD in document
    assert f"{owed // 100}.{owed % 100:02d}" in document

    page.get_by_label("Je confirme que la banque a exécuté les virements de ce lot").check()
    page.get_by_role("button", name="Marquer comme payé").click()
    page.wait_for_url(batch_url)
    assert page.get_by_test_id("batch-status").inner_text() == "payé"
    assert page.get_by_text("Lot marqué comme payé").is_visible()
    assert_accessible(page)
    assert ledger.balance(baker, "EUR") == 0
    ledger.assert_consistent()
    assert_clean_console(console)


def test_a_closed_day_is_announced_then_reopened_by_an_admin(live, page):
    base, ledger = live
    clerk = ledger.user("bank", password=PASSWORD)
    admin = ledger.user("admin", password=PASSWORD)
    console = _console(page)

    log_in(page, base, clerk.username, "/comptoir/", password=PASSWORD)
    page.wait_for_url("**/comptoir/")
    assert page.get_by_test_id("desk-day-closed").count() == 0
    page.get_by_role("link", name="Clôture de caisse").click()
    page.wait_for_url("**/comptoir/cloture")
    page.get_by_role("button", name="Vérifier").click()  # an empty drawer, as expected
    page.get_by_role("button", name="Clôturer la journée").click()
    page.wait_for_url("**/comptoir/cloture/*")
    report_url = page.url
    assert page.get_by_text("Journée clôturée.").is_visible()
    assert page.get_by_test_id("reopen-link").count() == 0  # the clerk cannot reopen

    page.goto(f"{base}/comptoir/")
    banner = page.get_by_test_id("desk-day-closed")
    assert banner.is_visible()
    assert re.match(r"Journée du \d\d/\d\d/\d{4} clôturée le", banner.inner_text())
    assert clerk.username in banner.inner_text()
    # Before any form: the banner comes first in the page's content.
    forms_after = page.evaluate(
        "() => { const b = document.querySelector('[data-testid=desk-day-closed]');"
        " const forms = [...document.querySelectorAll('main form')];"
        " return forms.length && forms.every("
        "f => b.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING); }")
    assert forms_after  # the search form at least, and each one after the banner
    assert_accessible(page)
    _log_out(page)

    log_in(page, base, admin.username, report_url.removeprefix(base), password=PASSWORD)
    page.wait_for_url(report_url)
    page.get_by_test_id("reopen-link").click()
    page.wait_for_url("**/reouverture")
    assert_accessible(page)
    page.get_by_role("button", name="Rouvrir la journée").click()  # no reason given
    reason = page.get_by_label("Raison de la réouverture")
    assert reason.get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    reason.fill("Clôturée à 15 h par erreur, le guichet reste ouvert.")
    page.get_by_role("button", name="Rouvrir la journée").click()
    page.wait_for_url(report_url)
    reopened = page.get_by_test_id("reopened")
    assert "Clôturée à 15 h par erreur" in reopened.inner_text()
    assert admin.username in reopened.inner_text()
    assert page.get_by_test_id("reopen-link").count() == 0  # once
    assert_accessible(page)
    _log_out(page)

    log_in(page, base, clerk.username, "/comptoir/", password=PASSWORD)
    page.wait_for_url("**/comptoir/")
    assert page.get_by_test_id("desk-day-closed").count() == 0
    assert page.get_by_test_id("desk-closed").count() == 0
    assert_accessible(page)
    assert ledger.count("cash_closings") == 1
    ledger.assert_consistent()
    assert_clean_console(console)
