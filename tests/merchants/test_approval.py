"""Approval (agrément) of prestataires: the state machine as a table over every (status,
action) pair, who may do what, the online application's checks, what approval means
for payments, concurrent decisions, and the public directory's reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from bousol.ledger.kernel import clock, siret
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import (
    ApprovalTransition,
    DomainError,
    DuplicateUser,
    FlowNotAllowed,
    Forbidden,
    InvalidInput,
    InvalidSiret,
    NotAPrestataire,
    UnknownParty,
)
from bousol.ledger.merchants import approval, directory
from bousol.ledger.models import Role
from tests.helpers import BANK, PASSWORD, THREADS, application, apply, hammer

STATUSES = ["draft", "submitted", "approved", "refused", "suspended"]
ACTIONS = ["submit", "approve", "refuse", "suspend", "reinstate", "amend"]
# The issue's state machine, written out here so that the code's table is checked
# against it (not against itself).
EXPECTED = {
    ("draft", "submit"): "submitted",
    ("submitted", "approve"): "approved",
    ("submitted", "refuse"): "refused",
    ("approved", "suspend"): "suspended",
    ("suspended", "reinstate"): "approved",
    ("refused", "amend"): "draft",
}


def applicant(applied: approval.Applied) -> Actor:
    return Actor(applied.user_id, Role.PRESTATAIRE, applied.party_id, applied.party_code,
                 applied.username)


def shop_in(ledger, status: str, admin: Actor, **overrides) -> approval.Applied:
    """An application brought to ``status`` by the real steps."""
    applied = apply(ledger, submit=status != "draft", **overrides)
    code = applied.party_code
    if status in ("approved", "suspended"):
        approval.approve(ledger.uow(), admin, code)
    if status == "refused":
        approval.refuse(ledger.uow(), admin, code, "SIRET d'un autre établissement.")
    if status == "suspended":
        approval.suspend(ledger.uow(), admin, code, "Charte non respectée.")
    return applied


def party_row(ledger, code: str):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT id, status, status_changed_at FROM parties WHERE code = :code"),
            {"code": code}).one()


def decision_rows(ledger, code: str) -> list:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT d.action, d.from_status, d.to_status, d.reason, d.decided_by_user_id, "
            "d.decided_at FROM approval_decisions d JOIN parties p ON p.id = d.party_id "
            "WHERE p.code = :code ORDER BY d.id"), {"code": code}).all()


def aware(value) -> dt.datetime:
    if isinstance(value, str):  # SQLite through text(): an ISO string
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@pytest.fixture
def admin(ledger) -> Actor:
    return ledger.user("admin")


# ---------------------------------------------------------------- the table


def test_the_code_table_is_the_issue_table():
    assert {(s.value, a.value): t.value for (s, a), t in approval.TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("status", [*STATUSES, "active", "bogus"])
@pytest.mark.parametrize("action", [*ACTIONS, "delete"])
def test_check_transition_table(status, action):
    if (status, action) in EXPECTED:
        assert approval.check_transition(status, action) == EXPECTED[(status, action)]
    else:
        with pytest.raises(ApprovalTransition) as refused:
            approval.check_transition(status, action)
        assert refused.value.code == "approval_transition"
        assert refused.value.http_status == 409


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_status_and_action(ledger, admin, status, action):
    applied = shop_in(ledger, status, admin)
    code = applied.party_code
    actor = applicant(applied) if action in ("submit", "amend") else admin
    before_row, before = party_row(ledger, code), decision_rows(ledger, code)
    reason = "Motif de la décision\nsur deux lignes"

    if (status, action) not in EXPECTED:
        with pytest.raises(ApprovalTransition):
            approval.decide(ledger.uow(), actor, code, action, reason)
        assert party_row(ledger, code) == before_row  # nothing written
        assert decision_rows(ledger, code) == before
        return

    started = clock.now()
    done = approval.decide(ledger.uow(), actor, code, action, reason)
    target = EXPECTED[(status, action)]
    assert (done.from_status, done.to_status) == (status, target)
    row = party_row(ledger, code)
    assert row.status == target
    after = decision_rows(ledger, code)
    assert after[:-1] == before and len(after) == len(before) + 1
    last = after[-1]
    assert (last.action, last.from_status, last.to_status, last.reason) == (
        action, status, target, reason)
    assert last.decided_by_user_id == actor.user_id
    decided_at = aware(last.decided_at)
    assert started - dt.timedelta(seconds=1) <= decided_at <= clock.now()
    assert aware(row.status_changed_at) == decided_at


def test_allowed_actions_follow_the_table():
    assert approval.allowed_actions("submitted", Role.ADMIN) == ["approve", "refuse"]
    assert approval.allowed_actions("submitted", Role.PRESTATAIRE) == []
    assert approval.allowed_actions("draft", Role.PRESTATAIRE) == ["submit"]
    assert approval.allowed_actions("refused", Role.PRESTATAIRE) == ["amend"]
    assert approval.allowed_actions("approved", Role.ADMIN) == ["suspend"]
    assert approval.allowed_actions("suspended", Role.ADMIN) == ["reinstate"]
    assert approval.allowed_actions("bogus", Role.ADMIN) == []


def test_a_full_life(ledger, admin):
    applied = apply(ledger, submit=False, charter_accepted=False)
    shop, code = applicant(applied), applied.party_code
    with pytest.raises(InvalidInput) as refused:  # a draft without the charter
        approval.submit(ledger.uow(), shop, code)
    assert refused.value.details["field"] == "charter_accepted"
    approval.update_application(ledger.uow(), shop, submit=True, **application())
    approval.refuse(ledger.uow(), admin, code, "Activité hors du Boulonnais.")
    approval.amend(ledger.uow(), shop, code)
    approval.update_application(ledger.uow(), shop, submit=True,
                                **application(commune="Boulogne-sur-Mer"))
    approval.approve(ledger.uow(), admin, code)
    approval.suspend(ledger.uow(), admin, code, "Ne respecte plus la charte.")
    approval.reinstate(ledger.uow(), admin, code)
    steps = [(r.action, r.to_status) for r in decision_rows(ledger, code)]
    assert steps == [("submit", "submitted"), ("refuse", "refused"), ("amend", "draft"),
                     ("submit", "submitted"), ("approve", "approved"),
                     ("suspend", "suspended"), ("reinstate", "approved")]
    with ledger.uow(read_only=True) as uow:
        lines = approval.decisions(uow.conn, applied.party_id)
        found = approval.application(uow.conn, code)
    assert [line.decided_by for line in lines] == [
        applied.username, admin.username, applied.username, applied.username,
        admin.username, admin.username, admin.username]
    assert [line.by_association for line in lines] == [False, True, False, False, True,
                                                       True, True]
    assert lines[1].reason == "Activité hors du Boulonnais."
    assert found.status == "approved" and found.commune == "Boulogne-sur-Mer"


# ---------------------------------------------------------------- who may do what


@pytest.mark.parametrize("action", ["approve", "refuse", "suspend", "reinstate"])
@pytest.mark.parametrize("who", ["applicant", "other_shop", "soliste", "bank", "ccas"])
def test_only_the_association_decides(ledger, admin, action, who):
    start = {"approve": "submitted", "refuse": "submitted", "suspend": "approved",
             "reinstate": "suspended"}[action]
    applied = shop_in(ledger, start, admin)
    actor = {"applicant": applicant(applied), "other_shop": applicant(apply(ledger)),
             "bank": BANK}.get(who) or ledger.user(who)
    before = decision_rows(ledger, applied.party_code)
    with pytest.raises(Forbidden):
        approval.decide(ledger.uow(), actor, applied.party_code, action, "Un motif.")
    assert decision_rows(ledger, applied.party_code) == before
    assert party_row(ledger, applied.party_code).status == start


@pytest.mark.parametrize("action", ["submit", "amend"])
@pytest.mark.parametrize("who", ["admin", "other_shop", "soliste", "bank"])
def test_only_the_applicant_submits_and_amends(ledger, admin, action, who):
    start = "draft" if action == "submit" else "refused"
    applied = shop_in(ledger, start, admin)
    actor = {"admin": admin, "other_shop": applicant(apply(ledger)), "bank": BANK}.get(who) \
        or ledger.user(who)
    before = decision_rows(ledger, applied.party_code)
    with pytest.raises(Forbidden):
        approval.decide(ledger.uow(), actor, applied.party_code, action)
    assert decision_rows(ledger, applied.party_code) == before
    assert party_row(ledger, applied.party_code).status == start


def test_the_applicant_known_by_its_code_only(ledger, admin):
    """An actor without party id (a test helper's, the command line's) is matched by its
    party code."""
    applied = shop_in(ledger, "draft", admin)
    actor = dataclasses.replace(applicant(applied), party_id=None)
    assert approval.submit(ledger.uow(), actor, applied.party_code).to_status == "submitted"


@pytest.mark.parametrize("action", ["refuse", "suspend"])
@pytest.mark.parametrize("reason", [None, "", "   \n "])
def test_refusing_and_suspending_need_a_reason(ledger, admin, action, reason):
    applied = shop_in(ledger, "submitted" if action == "refuse" else "approved", admin)
    before = decision_rows(ledger, applied.party_code)
    with pytest.raises(InvalidInput) as refused:
        approval.decide(ledger.uow(), admin, applied.party_code, action, reason)
    assert refused.value.details["field"] == "reason"
    assert "Motif obligatoire" in refused.value.message
    assert decision_rows(ledger, applied.party_code) == before


def test_a_reason_is_checked(ledger, admin):
    applied = shop_in(ledger, "submitted", admin)
    for bad in ("x" * 1001, "nul\x00"):
        with pytest.raises(InvalidInput):
            approval.refuse(ledger.uow(), admin, applied.party_code, bad)
    assert party_row(ledger, applied.party_code).status == "submitted"


def test_decisions_on_others_than_prestataires(ledger, admin):
    marie = ledger.soliste()
    with pytest.raises(NotAPrestataire):
        approval.approve(ledger.uow(), admin, marie.party_code)
    with pytest.raises(UnknownParty):
        approval.approve(ledger.uow(), admin, "P-999999")
    with pytest.raises(ApprovalTransition):
        approval.decide(ledger.uow(), admin, "P-000001", "delete")


def test_prestataires_made_by_the_association_are_approved(ledger, admin):
    shop = ledger.prestataire()  # create_user: the association's own tool
    assert party_row(ledger, shop.party_code).status == "approved"
    approval.suspend(ledger.uow(), admin, shop.party_code, "Fermeture administrative.")
    assert party_row(ledger, shop.party_code).status == "suspended"


# ---------------------------------------------------------------- the application


def _counts(ledger) -> tuple[int, int, int]:
    return (ledger.count("parties"), ledger.count("users"), ledger.count("approval_decisions"))


@pytest.mark.parametrize(("overrides", "code", "field", "submit"), [
    ({"siret": "732 829 320 00075"}, "invalid_siret", "siret", False),
    ({"siret": "1234"}, "invalid_siret", "siret", False),
    ({"iban": "FR76 3000 6000 0112 3456 7890 188"}, "invalid_iban", "iban", False),
    ({"iban": "US12345678901234567890"}, "invalid_iban", "iban", False),
    ({"bic": "NOPE"}, "invalid_bic", "bic", False),
    ({"legal_form": "gmbh"}, "invalid_input", "legal_form", False),
    ({"filiere": "banque"}, "invalid_input", "filiere", False),
    ({"filiere": None}, "invalid_input", "filiere", False),
    ({"name": "  "}, "invalid_input", "name", False),
    ({"name": "x" * 201}, "invalid_input", "name", False),
    ({"email": "pas-un-courriel"}, "invalid_input", "email", False),
    ({"phone": "12"}, "invalid_input", "phone", False),
    ({"address": "a\x00b"}, "invalid_input", "address", False),
    ({"charter_accepted": False}, "invalid_input", "charter_accepted", True),
    ({"contact_name": ""}, "invalid_input", "contact_name", True),
    ({"siret": None}, "invalid_siret", "siret", True),
    ({"iban": ""}, "invalid_iban", "iban", True),
    ({"legal_form": None}, "invalid_input", "legal_form", True),
])
def test_bad_applications_write_nothing(ledger, overrides, code, field, submit):
    before = _counts(ledger)
    with pytest.raises(DomainError) as refused:
        apply(ledger, submit=submit, **overrides)
    assert refused.value.code == code
    assert refused.value.details["field"] == field
    assert refused.value.details["fields"][field] == refused.value.message
    assert refused.value.message and refused.value.message[0].isupper()
    assert _counts(ledger) == before


def test_every_error_is_reported_at_once(ledger):
    with pytest.raises(InvalidInput) as refused:
        approval.apply(ledger.uow(), username="Bad Name!", password="short", submit=True,
                       name="Le Fournil", filiere="alimentation", siret="123",
                       iban="FR00", email="nope")
    assert refused.value.details["field"] == "legal_form"  # the first, in the form's order
    fields = refused.value.details["fields"]
    assert {"username", "password", "siret", "iban", "email", "legal_form", "address",
            "commune", "contact_name", "phone", "charter_accepted"} <= set(fields)
    assert "bic" not in fields and "name" not in fields


def test_a_draft_needs_only_a_name_and_a_filiere(ledger):
    applied = approval.apply(ledger.uow(), username="fournil", password=PASSWORD,
                             name="Le Fournil", filiere="alimentation")
    assert applied.status == "draft"
    assert decision_rows(ledger, applied.party_code) == []  # a draft is no decision
    with ledger.uow(read_only=True) as uow:
        found = approval.application(uow.conn, applied.party_code)
    assert found.missing == ["legal_form", "siret", "address", "commune", "contact_name",
                             "phone", "email", "iban", "charter_accepted"]
    assert found.usernames == ("fournil",)


def test_an_application_sent_at_once(ledger):
    applied = apply(ledger, submit=True, bic="agri frpp")
    assert applied.status == "submitted"
    [step] = decision_rows(ledger, applied.party_code)
    assert (step.action, step.from_status, step.to_status, step.decided_by_user_id) == (
        "submit", "draft", "submitted", applied.user_id)
    with ledger.uow(read_only=True) as uow:
        found = approval.application(uow.conn, applied.party_id)
    assert found.siret.isdigit() and len(found.siret) == 14
    assert found.iban == "FR7630006000011234567890189" and found.bic == "AGRIFRPP"
    assert found.phone == "0612345678" and found.charter_accepted_at is not None
    assert found.missing == []


def test_usernames_and_sirets_are_taken_once(ledger):
    first = apply(ledger)
    before = _counts(ledger)
    with pytest.raises(DuplicateUser):
        approval.apply(ledger.uow(), username=first.username.upper(), password=PASSWORD,
                       **application())
    with ledger.uow(read_only=True) as uow:
        taken = approval.application(uow.conn, first.party_code).siret
    with pytest.raises(InvalidSiret) as refused:
        apply(ledger, siret=siret.display(taken))
    assert refused.value.details["reason"] == "taken"
    assert _counts(ledger) == before


def test_updating_a_draft_only(ledger, admin):
    applied = apply(ledger, charter_accepted=False, contact_name=None)
    shop = applicant(applied)
    with pytest.raises(InvalidInput):  # still incomplete: nothing saved, nothing sent
        approval.update_application(ledger.uow(), shop, submit=True,
                                    **application(contact_name=None))
    assert party_row(ledger, applied.party_code).status == "draft"
    approval.update_application(ledger.uow(), shop, **application(name="Le Fournil"))
    with ledger.uow(read_only=True) as uow:
        found = approval.application(uow.conn, applied.party_code)
    assert found.name == "Le Fournil" and found.status == "draft"
    approval.submit(ledger.uow(), shop, applied.party_code)
    with pytest.raises(ApprovalTransition):  # sent: no more changes
        approval.update_application(ledger.uow(), shop, **application(name="Autre"))
    approval.refuse(ledger.uow(), admin, applied.party_code, "Nom à corriger.")
    with pytest.raises(ApprovalTransition):  # refused: amend first
        approval.update_application(ledger.uow(), shop, **application(name="Autre"))
    with pytest.raises(Forbidden):
        approval.update_application(ledger.uow(), admin, **application())


def test_the_charter_keeps_its_first_acceptance(ledger):
    applied = apply(ledger)
    shop = applicant(applied)
    with ledger.uow(read_only=True) as uow:
        first = approval.application(uow.conn, applied.party_code).charter_accepted_at
    approval.update_application(ledger.uow(), shop, **application())
    approval.update_application(ledger.uow(), shop, **application(charter_accepted=False))
    with ledger.uow(read_only=True) as uow:
        assert approval.application(uow.conn, applied.party_code).charter_accepted_at is None
    assert first is not None


# ---------------------------------------------------------------- approval and payments


@pytest.fixture
def marie(ledger):
    ledger.subsidy("100.00")
    soliste = ledger.soliste()
    ledger.exchange(soliste, "50.00")
    return soliste


@pytest.mark.parametrize("status", ["draft", "submitted", "refused"])
def test_only_approved_prestataires_are_paid(ledger, admin, marie, status):
    applied = shop_in(ledger, status, admin)
    with pytest.raises(FlowNotAllowed):
        ledger.pay(marie, applied.party_code, "5.00")
    assert ledger.balance(applied.party_code) == 0
    if status == "submitted":
        approval.approve(ledger.uow(), admin, applied.party_code)
        ledger.pay(marie, applied.party_code, "5.00")
        assert ledger.balance(applied.party_code) == 500
    ledger.assert_consistent()


def test_a_suspended_prestataire_keeps_its_balance_and_reconverts(ledger, admin, marie):
    applied = shop_in(ledger, "approved", admin)
    code = applied.party_code
    ledger.pay(marie, code, "20.00")
    approval.suspend(ledger.uow(), admin, code, "Enquête en cours.")
    with pytest.raises(FlowNotAllowed) as refused:
        ledger.pay(marie, code, "5.00")
    assert "n'est pas agréé" in refused.value.message
    assert ledger.balance(code) == 2_000  # kept
    done = ledger.reconvert(code, "10.00")  # and it can still reconvert
    assert ledger.balance(code) == 1_000 and ledger.balance(code, "EUR") == done.euro_cents
    approval.reinstate(ledger.uow(), admin, code)
    ledger.pay(marie, code, "5.00")
    assert ledger.balance(code) == 1_500
    ledger.assert_consistent()


# ---------------------------------------------------------------- concurrency


def test_concurrent_approve_and_refuse_apply_once(ledger, admin):
    applied = shop_in(ledger, "submitted", admin)
    code = applied.party_code

    def worker(i: int) -> str:
        try:
            if i % 2:
                approval.approve(ledger.uow(), admin, code)
                return "approve"
            approval.refuse(ledger.uow(), admin, code, f"Refus n° {i}")
            return "refuse"
        except ApprovalTransition:
            return "conflict"

    outcomes = Counter(hammer(worker))
    assert outcomes["conflict"] == THREADS - 1
    [winner] = [name for name in ("approve", "refuse") if outcomes[name]]
    steps = decision_rows(ledger, code)
    assert [s.action for s in steps] == ["submit", winner]
    assert party_row(ledger, code).status == {"approve": "approved",
                                              "refuse": "refused"}[winner]


def test_concurrent_approvals_record_one_decision(ledger, admin):
    applied = shop_in(ledger, "submitted", admin)

    def worker(i: int) -> str:
        try:
            approval.approve(ledger.uow(), admin, applied.party_code)
            return "approved"
        except ApprovalTransition:
            return "conflict"

    assert Counter(hammer(worker)) == {"approved": 1, "conflict": THREADS - 1}
    assert [s.action for s in decision_rows(ledger, applied.party_code)] == [
        "submit", "approve"]


# ---------------------------------------------------------------- lists and directory


def test_the_association_sees_waiting_applications_first(ledger, admin):
    made = {status: shop_in(ledger, status, admin, name=f"Boutique {status}")
            for status in ("approved", "draft", "refused", "submitted", "suspended")}
    with ledger.uow(read_only=True) as uow:
        rows = approval.list_by_status(uow.conn)
        waiting = approval.list_by_status(uow.conn, "submitted")
    ours = [r.status for r in rows if r.code in {a.party_code for a in made.values()}]
    assert ours == ["submitted", "suspended", "approved", "refused", "draft"]
    assert [r.code for r in waiting] == [made["submitted"].party_code]


@pytest.fixture
def town(ledger, admin):
    """Approved shops in three communes, one of each other status, and a soliste."""
    shops = {
        "epicerie": shop_in(ledger, "approved", admin, name="Épicerie de l’Estran",
                            commune="Le Portel"),
        "velo": shop_in(ledger, "approved", admin, name="Vélo Côte d'Opale",
                        commune="Boulogne-sur-Mer", filiere="mobilite-douce"),
        "livres": shop_in(ledger, "approved", admin, name="Librairie du Beffroi",
                          commune="boulogne-sur-mer ", filiere="loisirs-culture"),
        "draft": shop_in(ledger, "draft", admin, name="Brouillon SARL", commune="Wimereux"),
        "submitted": shop_in(ledger, "submitted", admin, name="En attente SAS",
                             commune="Wimereux"),
        "refused": shop_in(ledger, "refused", admin, name="Refusée SA", commune="Wimille"),
        "suspended": shop_in(ledger, "suspended", admin, name="Suspendue EURL",
                             commune="Outreau"),
    }
    ledger.soliste(name="Marie Lefebvre")
    return shops


def _directory(ledger, **filters) -> list[str]:
    with ledger.uow(read_only=True) as uow:
        return [e.name for e in directory.directory(uow.conn, **filters)]


def test_the_directory_lists_approved_prestataires_only(ledger, town):
    assert _directory(ledger) == ["Épicerie de l’Estran", "Librairie du Beffroi",
                                  "Vélo Côte d'Opale"]


@pytest.mark.parametrize(("filters", "names"), [
    ({"q": "epicerie"}, ["Épicerie de l’Estran"]),
    ({"q": "  ÉPICERIE  de l'estran"}, ["Épicerie de l’Estran"]),
    ({"q": "velo cote"}, ["Vélo Côte d'Opale"]),
    ({"q": "suspendue"}, []),
    ({"q": "marie"}, []),
    ({"filiere": "loisirs-culture"}, ["Librairie du Beffroi"]),
    ({"filiere": "habitat-durable"}, []),
    ({"commune": "Boulogne-sur-Mer"}, ["Librairie du Beffroi", "Vélo Côte d'Opale"]),
    ({"commune": "wimereux"}, []),
    ({"commune": "Boulogne-sur-Mer", "filiere": "mobilite-douce", "q": "vél"},
     ["Vélo Côte d'Opale"]),
])
def test_directory_filters(ledger, town, filters, names):
    assert _directory(ledger, **filters) == names


def test_directory_communes_and_entries(ledger, town):
    with ledger.uow(read_only=True) as uow:
        communes = directory.directory_communes(uow.conn)
        entry = directory.directory_entry(uow.conn, town["velo"].party_code)
        others = [directory.directory_entry(uow.conn, town[name].party_code)
                  for name in ("draft", "submitted", "refused", "suspended")]
        nobody = [directory.directory_entry(uow.conn, code)
                  for code in ("S-000001", "P-999999", "x" * 100)]
    assert len(communes) == 2 and "Le Portel" in communes
    assert {c.strip().lower() for c in communes} == {"le portel", "boulogne-sur-mer"}
    assert entry.name == "Vélo Côte d'Opale" and entry.filiere == "mobilite-douce"
    assert others == [None] * 4 and nobody == [None] * 3


def test_directory_entries_carry_no_personal_data():
    public = {f.name for f in dataclasses.fields(directory.DirectoryEntry)}
    assert public == {"code", "name", "filiere", "commune", "address", "opening_hours",
                      "description"}
    assert not public & {"contact_name", "phone", "email", "iban", "bic", "siret"}


def test_the_public_profile(ledger, admin):
    applied = shop_in(ledger, "approved", admin)
    shop = applicant(applied)
    approval.update_public_profile(
        ledger.uow(), shop, opening_hours="Mardi–samedi : 8 h – 19 h\r\nDimanche : 8 h – 12 h",
        description="  Pain au levain.  ")
    with ledger.uow(read_only=True) as uow:
        entry = directory.directory_entry(uow.conn, applied.party_code)
    assert entry.opening_hours == "Mardi–samedi : 8 h – 19 h\nDimanche : 8 h – 12 h"
    assert entry.description == "Pain au levain."
    with pytest.raises(InvalidInput):
        approval.update_public_profile(ledger.uow(), shop, opening_hours="x" * 501,
                                       description=None)
    with pytest.raises(InvalidInput):
        approval.update_public_profile(ledger.uow(), shop, opening_hours=None,
                                       description="bip\x07")
    with pytest.raises(Forbidden):
        approval.update_public_profile(ledger.uow(), admin, opening_hours="", description="")
    with pytest.raises(Forbidden):  # a soliste has no public page
        approval.update_public_profile(ledger.uow(), ledger.soliste(), opening_hours="",
                                       description="")
