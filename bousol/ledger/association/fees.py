"""The membership fee: how much each college pays, until when a fee runs.

These are the association's rules (docs/members.md): the fee of each college is a
dated setting (``membership.fee_cents`` for solistes, 3,00 € by default,
``membership.fee_cents.prestataires``, ``membership.fee_cents.acteurs_locaux``); a fee
paid in a year runs until 31 December of that year, paying again extends it by a year.
The desk (:mod:`bousol.ledger.desk.members`) takes the fee at registration and renewal;
the association's own pages (:mod:`bousol.ledger.association.membership`) list who is
due.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection

from bousol.ledger.association.models import College
from bousol.ledger.books.models import PartyKind, SystemAccount
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.kernel import money, settings
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import FeeChanged, InvalidInput

FEE_KEY = "membership.fee_cents"  # the solistes' fee (the first one, kept for its key)
FEE_KEYS = {
    College.SOLISTES: FEE_KEY,
    College.PRESTATAIRES: "membership.fee_cents.prestataires",
    College.ACTEURS_LOCAUX: "membership.fee_cents.acteurs_locaux",
}
# Which college a party of each kind belongs to (local partners without an account,
# the ``partners`` rows, are acteurs locaux too). The association is no member.
_KIND_COLLEGE = {
    PartyKind.SOLISTE: College.SOLISTES,
    PartyKind.PRESTATAIRE: College.PRESTATAIRES,
    PartyKind.CCAS: College.ACTEURS_LOCAUX,
    PartyKind.BANK: College.ACTEURS_LOCAUX,
}


def college_of(kind: str) -> College | None:
    """The college of a party of this kind (None: the association, not a member)."""
    try:
        return _KIND_COLLEGE.get(PartyKind(kind))
    except ValueError:
        return None


def college_fee_cents(conn: Connection, college: College | str) -> int:
    """The yearly fee of a member of this college, in cents (a dated setting)."""
    key = FEE_KEYS[College(college)]
    return int(settings.current(conn, [key])[key])


def _year_end(today: dt.date) -> dt.date:
    return dt.date(today.year, 12, 31)


def next_until(paid_until: dt.date | None, today: dt.date) -> dt.date:
    """The validity a fee paid ``today`` gives: 31 December of this year, or of the
    year after ``paid_until`` when the membership already runs to this year's end."""
    until = _year_end(today)
    if paid_until is not None and paid_until >= until:
        until = dt.date(paid_until.year + 1, 12, 31)  # paying ahead extends by a year
    return until


def fee_due(conn: Connection, college: College, seen_fee_cents: int | None = None) -> int:
    """The fee to take from a member of ``college``. ``seen_fee_cents``: the fee the
    page showed; if it changed since (an adopted decision, a setting), nothing is
    taken (``fee_changed``): never an amount nobody announced."""
    fee_cents = college_fee_cents(conn, college)
    if seen_fee_cents is not None and seen_fee_cents != fee_cents:
        raise FeeChanged(f"La cotisation vient de changer : {money.format_fr(fee_cents, '€')} "
                         "désormais. Rien n'a été encaissé ni enregistré.")
    if fee_cents == 0:
        raise InvalidInput("La cotisation est à 0 : rien à encaisser.")
    return fee_cents


def post_fee(conn: Connection, actor: Actor, code: str, fee_cents: int, until: dt.date,
             details: dict, *,
             under_lock: Callable[[Connection], None] | None = None) -> int:
    """The fee's one entry: euros from outside to ``fees_income``. ``under_lock``: what
    the taker checks once the two accounts are locked (the desk: its day is still open,
    so a closing made meanwhile is seen)."""
    locked = lock_accounts(conn, system=(SystemAccount.EUR_OUTSIDE, SystemAccount.FEES_INCOME))
    if under_lock is not None:
        under_lock(conn)
    return post(
        conn, kind="membership_fee",
        legs=[Leg(locked.system(SystemAccount.EUR_OUTSIDE), -fee_cents),
              Leg(locked.system(SystemAccount.FEES_INCOME), fee_cents)],
        actor_user_id=actor.user_id, memo=f"Cotisation {until.year} — {code}",
        details=details,
    )
