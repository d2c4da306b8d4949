"""The 5 % bonus of an exchange (20 € = 21 B), and when the CCAS goes without it.

One rule for the exchange itself (:mod:`bousol.ledger.desk.exchange`, and in paper notes
:mod:`bousol.ledger.desk.notes`) and for the desk's page, which shows the Bou'Sols due
before the clerk confirms: a soliste always gets the bonus; the CCAS gets it unless the
setting ``ccas.bonus`` is ``off`` (then 20 € buy 20 B).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from bousol.ledger.books.models import PartyKind
from bousol.ledger.kernel import money, settings

CCAS_BONUS = "ccas.bonus"


@dataclass(frozen=True)
class Conversion:
    """What ``euro_cents`` buy: the Bou'Sols, the bonus paid by the bonus fund (part of
    the Bou'Sols), and the rate written in the entry's details."""

    euro_cents: int
    bousol_cents: int
    bonus_cents: int
    with_bonus: bool

    @property
    def rate(self) -> str:
        return f"{money.RATE_EUR}:{money.RATE_BSOL}" if self.with_bonus else "1:1"


def applies(conn: Connection, party_kind: str) -> bool:
    """Whether a party of this kind gets the bonus when it exchanges euros."""
    if party_kind == PartyKind.CCAS:
        return settings.current(conn, [CCAS_BONUS])[CCAS_BONUS] != "off"
    return True


def for_exchange(conn: Connection, party_kind: str, euro_cents: int) -> Conversion:
    """The Bou'Sols ``euro_cents`` buy for a party of this kind (rounded down to the
    cent: :func:`bousol.ledger.kernel.money.bousols_for_euros`)."""
    if not applies(conn, party_kind):
        return Conversion(euro_cents, euro_cents, 0, with_bonus=False)
    bousol_cents, bonus_cents = money.bousols_for_euros(euro_cents)
    return Conversion(euro_cents, bousol_cents, bonus_cents, with_bonus=True)
