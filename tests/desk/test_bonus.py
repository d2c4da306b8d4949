"""The exchange's bonus, one rule for the exchange and the desk's page
(bousol/ledger/desk/bonus.py): a soliste always gets it, the CCAS unless ccas.bonus is off."""

from __future__ import annotations

import pytest

from bousol.ledger.books.models import PartyKind
from bousol.ledger.desk import bonus


@pytest.mark.parametrize(("kind", "setting", "bousols", "bonus_cents", "rate"), [
    (PartyKind.SOLISTE, "on", 2100, 100, "20:21"),
    (PartyKind.SOLISTE, "off", 2100, 100, "20:21"),  # the setting is the CCAS's only
    (PartyKind.CCAS, "on", 2100, 100, "20:21"),
    (PartyKind.CCAS, "off", 2000, 0, "1:1"),
    ("ccas", "off", 2000, 0, "1:1"),  # a kind read from the table: its plain text
])
def test_who_gets_the_bonus(ledger, kind, setting, bousols, bonus_cents, rate):
    ledger.setting("ccas.bonus", setting)
    with ledger.engine.connect() as conn:
        got = bonus.for_exchange(conn, kind, 2000)
        assert bonus.applies(conn, kind) is (rate == "20:21")
    assert (got.euro_cents, got.bousol_cents, got.bonus_cents, got.rate) == (
        2000, bousols, bonus_cents, rate)


def test_the_bonus_is_rounded_down_and_the_rate_stays_for_a_cent(ledger):
    with ledger.engine.connect() as conn:
        assert bonus.for_exchange(conn, PartyKind.SOLISTE, 1999).bousol_cents == 2098
        one_cent = bonus.for_exchange(conn, PartyKind.SOLISTE, 1)
    # 1 cent buys 1 cent (rounded down): no bonus paid, yet the bonus rate applied
    assert (one_cent.bousol_cents, one_cent.bonus_cents, one_cent.rate) == (1, 0, "20:21")


def test_the_exchange_follows_the_setting(ledger):
    ccas = ledger.user("ccas")
    ledger.setting("ccas.bonus", "off")
    result = ledger.exchange(ccas, "20.00")
    assert (result.bousol_cents, result.bonus_cents) == (2000, 0)
    ledger.setting("ccas.bonus", "on")
    result = ledger.exchange(ccas, "20.00")
    assert (result.bousol_cents, result.bonus_cents) == (2100, 100)
    ledger.assert_consistent()
