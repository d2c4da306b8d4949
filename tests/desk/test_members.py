"""Registering solistes at the desk and the yearly membership fee."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bousol.ledger.desk import members
from bousol.ledger.kernel.errors import Forbidden, InvalidInput, UnknownParty
from tests.helpers import BANK

TODAY = dt.date(2026, 11, 22)


def register(ledger, **overrides):
    fields = {"name": "Élodie Caron", "charter_accepted": True, "tender": "cash",
              "phone": "06 12 34 56 78", "email": "elodie@example.org",
              "address": "12 rue de la Lampe", "commune": "Le Portel", "today": TODAY}
    fields.update(overrides)
    return members.register_soliste(ledger.uow(), BANK, **fields)


def party(ledger, code):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM parties WHERE code = :c"), {"c": code}).first()


def test_registration_takes_the_fee_as_income(ledger):
    membership = register(ledger)
    assert membership.party_code.startswith("S-") and membership.fee_cents == 300
    assert membership.membership_until == dt.date(2026, 12, 31)
    row = party(ledger, membership.party_code)
    assert (row.name, row.phone, row.commune) == ("Élodie Caron", "0612345678", "Le Portel")
    assert row.charter_accepted_at is not None
    assert ledger.system("fees_income") == 300
    assert ledger.balance(membership.party_code) == 0
    ledger.assert_consistent()


def test_the_fee_is_a_setting(ledger):
    ledger.setting("membership.fee_cents", "500")
    assert register(ledger).fee_cents == 500
    assert ledger.system("fees_income") == 500


def test_renewal_extends_by_a_year(ledger):
    first = register(ledger)
    renewed = members.renew_membership(ledger.uow(), BANK, party_code=first.party_code,
                                       tender="card", today=TODAY)
    assert renewed.membership_until == dt.date(2027, 12, 31)
    later = members.renew_membership(ledger.uow(), BANK, party_code=first.party_code,
                                     tender="cheque", today=dt.date(2029, 2, 1))
    assert later.membership_until == dt.date(2029, 12, 31)  # lapsed: this year only
    assert ledger.system("fees_income") == 900


@pytest.mark.parametrize(("overrides", "message"), [
    ({"charter_accepted": False}, "charte"),
    ({"name": "  "}, "Nom"),
    ({"phone": "12"}, "téléphone"),
    ({"phone": "06 12 AB"}, "téléphone"),
    ({"email": "not-an-email"}, "électronique"),
    ({"tender": "transfer"}, "espèces"),
    ({"tender": "bitcoin"}, "inconnu"),
    ({"address": "x" * 301}, "Adresse"),
    ({"commune": "Bou\x00logne"}, "non imprimables"),
])
def test_registration_refusals_write_nothing(ledger, overrides, message):
    with pytest.raises(InvalidInput) as info:
        register(ledger, **overrides)
    assert message in info.value.message
    assert ledger.count("entries") == 0
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text(
            "SELECT count(*) FROM parties WHERE kind = 'soliste'")).scalar() == 0


def test_only_the_bank_registers(ledger):
    marie = ledger.soliste()
    with pytest.raises(Forbidden):
        members.register_soliste(ledger.uow(), marie, name="X", charter_accepted=True,
                                 tender="cash")
    with pytest.raises(UnknownParty):
        members.renew_membership(ledger.uow(), BANK, party_code="S-999999", tender="cash")
