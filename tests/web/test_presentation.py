"""The small things users hit (issue 13, section 5): plurals and elision, amounts with
their unit, party codes typed with spaces, English validation messages, settings in
percent and euros, the audit trail in a treasurer's words."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from bousol.ledger.access.parties import normalise_party_code
from bousol.ledger.association import decisions
from bousol.ledger.books import rules
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.actors import SYSTEM
from bousol.ledger.kernel.errors import FlowNotAllowed
from bousol.ledger.models import PartyKind
from bousol.web import audit_view
from bousol.web.formatting import elides, fr_basis_points, setting_value
from tests.helpers import PASSWORD, confirm_exchange, csrf_token, enter_exchange, login


def english(client) -> None:
    with client.session_transaction() as session:
        session["lang"] = "en"


# ------------------------------------------------------------------ party codes


@pytest.mark.parametrize(("typed", "code"), [
    ("P-000002", "P-000002"), ("P 000002", "P-000002"), ("p-000002", "P-000002"),
    (" p000002 ", "P-000002"), ("P – 000002", "P-000002"), ("S\u00a0000123", "S-000123"),
    ("P-00002", "P-00002"), ("PP-000002", "PP-000002"), ("", ""), ("bonjour", "BONJOUR"),
])
def test_a_party_code_is_read_whatever_spaces_and_dashes(typed, code):
    assert normalise_party_code(typed) == code


def test_a_supplier_typed_with_a_space_is_paid(client, ledger):
    ledger.subsidy()
    ledger.phase("b2b", True)
    marie, baker, grower = ledger.soliste(), ledger.prestataire(), ledger.prestataire()
    ledger.exchange(marie, "20.00")
    ledger.pay(marie, baker, "10.00")
    login(client, baker.username, PASSWORD)
    page = client.get("/prestataire/fournisseur/payer")
    key = re.search(r'name="request_key" type="hidden" value="([0-9a-f]+)"', page.text)[1]
    typed = grower.party_code.replace("-", " ").lower()  # "p 000002"
    paid = client.post("/prestataire/fournisseur/payer", data={
        "csrf_token": csrf_token(page.text), "request_key": key, "supplier": typed,
        "amount": "4,00", "reference": "Facture 12", "secret": PASSWORD})
    assert paid.status_code == 302, paid.text
    assert ledger.balance(grower) == 400


def test_the_desk_finds_a_member_by_a_code_typed_with_a_space(client, ledger):
    clerk = ledger.user("bank")
    marie = ledger.soliste(name="Marie Lefebvre")
    login(client, clerk.username, PASSWORD)
    found = client.get("/comptoir/adherents", query_string={
        "q": marie.party_code.replace("-", " ")})
    assert found.status_code == 200 and "Marie Lefebvre" in found.text


# ------------------------------------------------------------------ plurals and elision


def test_one_cent_coins_are_singular(app):
    from bousol.web.desk.views import _denomination_label

    with app.test_request_context():
        assert str(_denomination_label(1)) == "Pièces de 1 centime"
        assert str(_denomination_label(2)) == "Pièces de 2 centimes"


@pytest.mark.parametrize(("payer", "payee", "words"), [
    (PartyKind.SOLISTE, PartyKind.SOLISTE, "Un paiement d'un soliste vers un soliste"),
    (PartyKind.CCAS, PartyKind.PRESTATAIRE, "Un paiement du CCAS vers un prestataire"),
    (PartyKind.BANK, PartyKind.SOLISTE, "Un paiement de la banque SOL vers un soliste"),
    (PartyKind.ASSOCIATION, PartyKind.SOLISTE, "Un paiement de l'association vers"),
])
def test_flow_refusals_elide_de(payer, payee, words):
    with pytest.raises(FlowNotAllowed) as refused:
        rules.check_flow(payer, payee, frozenset())
    assert refused.value.message.startswith(words)
    assert "de un" not in refused.value.message and "de le" not in refused.value.message


@pytest.mark.parametrize(("name", "elided"), [
    ("Éco-Habitat", True), ("atelier", True), ("Boulangerie", False), ("Hôtel", False),
    ("", False), (None, False)])
def test_which_names_take_d_apostrophe(name, elided):
    assert elides(name) is elided


def test_a_member_count_of_one_is_singular(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    decisions.add_member(ledger.uow(), SYSTEM, admin.username, "acteurs_locaux")
    page = client.get("/admin/collectif")
    assert re.search(r'data-testid="seats-total">1 membre au collectif\.<', page.text)


# ------------------------------------------------------------------ English mode


def test_a_missing_field_is_told_in_english(client, ledger):
    baker = ledger.prestataire()
    login(client, baker.username, PASSWORD)
    english(client)
    page = client.get("/prestataire/factures/nouvelle")
    sent = client.post("/prestataire/factures/nouvelle",
                       data={"csrf_token": csrf_token(page.text)})
    assert sent.status_code == 422
    assert "This field is required." in sent.text and "obligatoire" not in sent.text


def test_the_public_application_says_what_is_missing_in_english(client, ledger):
    english(client)
    page = client.get("/agrement")
    sent = client.post("/agrement", data={"csrf_token": csrf_token(page.text)})
    assert sent.status_code == 422
    text = sent.text.replace("&#39;", "'")
    assert "The name of the business or organisation is required." in text
    assert "The sector is required." in text
    assert "Invalid username" in text
    assert "est obligatoire" not in text


def test_a_seat_without_a_username_is_refused_in_english(client, ledger):
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    english(client)
    page = client.get("/admin/collectif")
    sent = client.post("/admin/collectif", data={"csrf_token": csrf_token(page.text),
                                                 "username": "", "college": ""})
    assert sent.status_code == 422
    assert "Username: required." in sent.text and "obligatoire" not in sent.text


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("reconversion.fee_bp", "500", "5\u00a0%"), ("reconversion.fee_bp", "250", "2,5\u00a0%"),
    ("notes.reactivation_fee_bp", "1", "0,01\u00a0%"),
    ("membership.fee_cents", "300", "3,00\u00a0€"),
    ("exchange.approval_above_cents", "150000", "1\u202f500,00\u00a0€"),
    ("decisions.quorum_pct", "50", "50\u00a0%"),
    ("refunds.max_days", "1", "1 jour"), ("refunds.max_days", "30", "30 jours"),
    ("payment_requests.ttl_minutes", "15", "15 minutes"),
    ("notes.validity_months", "6", "6 mois"),
    ("phase.b2b", "on", "ouverte"), ("ccas.bonus", "off", "non"),
    ("reconversion.fee_bp", "abc", "abc"),
])
def test_a_setting_reads_in_its_unit(app, key, value, shown):
    with app.test_request_context():
        assert setting_value(key, value) == shown


def test_basis_points_are_exact():
    assert [fr_basis_points(v) for v in (0, 5, 50, 100, 1234, 10_000)] == [
        "0\u00a0%", "0,05\u00a0%", "0,5\u00a0%", "1\u00a0%", "12,34\u00a0%", "100\u00a0%"]


def test_the_settings_page_shows_percent_and_euros(client, ledger):
    ledger.setting("reconversion.fee_bp", "400")
    admin = ledger.user("admin")
    login(client, admin.username, PASSWORD)
    page = client.get("/admin/reglages")
    assert page.status_code == 200
    assert 'data-testid="value-reconversion.fee_bp">4\u00a0%</strong>' in page.text
    assert 'data-testid="default-reconversion.fee_bp">5\u00a0%<' in page.text
    assert 'data-testid="value-membership.fee_cents">3,00\u00a0€</strong>' in page.text
    assert '<td>4\u00a0%</td>' in page.text  # the history, too
    assert ">400<" not in page.text.replace("(400)", "")


# ------------------------------------------------------------------ the audit trail


def test_the_audit_trail_says_who_did_what_to_which_record(app, client, ledger):
    clerk = ledger.user("bank", password="guichet-123")
    marie = ledger.soliste()
    login(client, clerk.username, "guichet-123")
    preview = enter_exchange(client, marie.party_code, "20,00")
    answer, _fields = confirm_exchange(client, marie.party_code, preview)
    assert answer.status_code == 302
    with ledger.engine.connect() as conn:
        entry_id = conn.execute(sa.text(
            "SELECT max(id) FROM entries WHERE kind = 'exchange'")).scalar_one()
    admin, treasurer = ledger.user("admin"), app.test_client()
    login(treasurer, admin.username, PASSWORD)
    page = treasurer.get("/admin/audit", query_string={"qui": clerk.username})
    assert page.status_code == 200
    cards = page.text.split('data-testid="audit-record"')[1:]
    exchange = next(c for c in cards if "Échange au comptoir" in c)
    summary = exchange.split("<details>")[0]
    assert f"Écriture n° {entry_id} (Change euros → Bou&#39;Sols) : ajout" in summary
    assert "idempotency_keys" not in summary and "/comptoir/change/" not in summary
    assert "POST /comptoir/change/&lt;code&gt;" in exchange  # kept, under « Détail »


def test_a_vote_reads_as_a_vote_on_its_decision(client, ledger):
    admin = ledger.user("admin")
    decisions.add_member(ledger.uow(), SYSTEM, admin.username, "acteurs_locaux")
    motion_id = decisions.propose(
        ledger.uow(), admin, title="Une décision", body="Pour voir.",
        closes_at=clock.now() + dt.timedelta(days=3))
    login(client, admin.username, PASSWORD)
    page = client.get(f"/collectif/motions/{motion_id}")
    voted = client.post(f"/collectif/motions/{motion_id}/vote",
                        data={"csrf_token": csrf_token(page.text), "choice": "for"})
    assert voted.status_code == 302
    trail = client.get("/admin/audit")
    assert f"Vote sur la décision n° {motion_id}</h3>" in trail.text
    assert "&lt;int:motion_id&gt;</h3>" not in trail.text


@pytest.mark.parametrize(("action", "details", "label"), [
    ("POST /comptoir/change/<code>", "{}", "Échange au comptoir"),
    ("POST /collectif/motions/<int:motion_id>/vote",
     '{"changes": [{"op": "insert", "table": "votes", "rows": 1, "columns": [],'
     ' "values": {"motion_id": [12]}}]}', "Vote sur la décision n° 12"),
    ("POST /collectif/motions/<int:motion_id>/vote", "{}", "Vote sur la décision"),
    ("flask bousol setting", "{}", "Réglage changé (ligne de commande)"),
    ("flask bousol nouvelle", "{}", "Commande « flask bousol nouvelle »"),
    ("POST /inconnue", "{}", "Autre opération (POST /inconnue)"),
    ("system", "{}", "system"),
])
def test_actions_in_words(app, action, details, label):
    with app.test_request_context():
        assert audit_view.action_label(action, details) == label


def test_every_writing_route_has_words(app):
    """A new form's route gets its words here too (else the page shows its rule)."""
    rules_ = {f"{m} {r.rule}" for r in app.url_map.iter_rules()
              for m in (r.methods or set()) - {"GET", "HEAD", "OPTIONS"}}
    assert not sorted(rules_ - set(audit_view.ACTIONS))


def test_records_are_named_and_technical_tables_hidden(app):
    details = ('{"changes": ['
               '{"op": "insert", "table": "entries", "rows": 1, "columns": [],'
               ' "values": {"id": [42], "kind": ["payment"]}},'
               '{"op": "insert", "table": "postings", "rows": 2, "columns": [], "values": {}},'
               '{"op": "insert", "table": "idempotency_keys", "rows": 1, "columns": [],'
               ' "values": {"key": ["k"]}},'
               '{"op": "update", "table": "accounts", "rows": 2, "columns": ["balance"],'
               ' "values": {"id": [3, 4]}}]}')
    with app.test_request_context():
        assert audit_view.describe(details) == [
            "Écriture n° 42 (Paiement) : ajout", "2 lignes d'écriture : ajout",
            "Comptes n° 3, 4 : modification"]


def test_zero_takes_the_singular_in_french_only(app):
    from flask import render_template_string, session

    from bousol.web.formatting import ngettext

    template = '{{ ngettext("%(num)d rappel à envoyer.", "%(num)d rappels à envoyer.", n) }}'
    with app.test_request_context():
        assert [render_template_string(template, n=n) for n in (0, 1, 2)] == [
            "0 rappel à envoyer.", "1 rappel à envoyer.", "2 rappels à envoyer."]
        assert ngettext("%(num)d envoyé", "%(num)d envoyés", 0) == "0 envoyé"
    with app.test_request_context():
        session["lang"] = "en"
        assert [render_template_string(template, n=n) for n in (0, 1, 2)] == [
            "0 reminders to send.", "1 reminder to send.", "2 reminders to send."]
