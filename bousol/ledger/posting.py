"""The posting engine: lock accounts, check limits, write one balanced entry.

This is the hot path of every operation, so it speaks SQLAlchemy Core, not the ORM:
one SELECT … FOR UPDATE for all the accounts involved (ascending id order, so two
transfers crossing each other never deadlock), one INSERT for the entry, one
executemany for the postings and one for the balances.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from bousol.ledger.errors import (
    BonusFundInsufficient,
    DomainError,
    InsufficientFunds,
    ReserveInsufficient,
    UnknownAccount,
    UnknownParty,
)
from bousol.ledger.models import Account, Entry, Party, Posting, SystemAccount

accounts_t = Account.__table__
entries_t = Entry.__table__
postings_t = Posting.__table__
parties_t = Party.__table__

# Which error a system account raises when it would go below zero.
_SHORTFALL_ERRORS: dict[str | None, type[DomainError]] = {
    SystemAccount.EUR_RESERVE.value: ReserveInsufficient,
    SystemAccount.BONUS_FUND.value: BonusFundInsufficient,
}


@dataclass(frozen=True, slots=True)
class LockedAccount:
    id: int
    currency: str
    balance: int
    allow_negative: bool
    system_code: str | None
    party_id: int | None
    party_code: str | None
    party_kind: str | None
    party_status: str | None
    party_filiere: str | None


@dataclass(frozen=True, slots=True)
class Leg:
    account: LockedAccount
    amount: int  # signed cents, + into the account


class Locked:
    """The accounts an operation holds locked, found by system code or party code."""

    def __init__(self, rows: list[LockedAccount]):
        self.rows = rows
        self._by_system = {r.system_code: r for r in rows if r.system_code}
        self._by_party = {(r.party_code, r.currency): r for r in rows if r.party_code}

    def system(self, code: SystemAccount) -> LockedAccount:
        try:
            return self._by_system[code.value]
        except KeyError:
            raise UnknownAccount(f"Compte système absent : {code.value}.") from None

    def party(self, code: str, currency: str = "BSOL") -> LockedAccount:
        try:
            return self._by_party[(code, currency)]
        except KeyError:
            raise UnknownParty(f"Aucun adhérent ne porte le code {code}.") from None


_lock_columns = (
    accounts_t.c.id,
    accounts_t.c.currency,
    accounts_t.c.balance,
    accounts_t.c.allow_negative,
    accounts_t.c.system_code,
    accounts_t.c.party_id,
    parties_t.c.code,
    parties_t.c.kind,
    parties_t.c.status,
    parties_t.c.filiere,
)


def lock_accounts(
    conn: Connection,
    *,
    system: tuple[SystemAccount, ...] = (),
    party_codes: tuple[str, ...] = (),
    account_ids: tuple[int, ...] = (),
    currency: str = "BSOL",
) -> Locked:
    """Lock (FOR UPDATE, ascending id) and return the accounts named, in one query."""
    conditions = []
    if system:
        conditions.append(accounts_t.c.system_code.in_([s.value for s in system]))
    if party_codes:
        conditions.append(
            parties_t.c.code.in_(party_codes)
            & (accounts_t.c.currency == currency)
            & (accounts_t.c.purpose == "main")
        )
    if account_ids:
        conditions.append(accounts_t.c.id.in_(account_ids))
    query = (
        select(*_lock_columns)
        .select_from(accounts_t.outerjoin(parties_t, accounts_t.c.party_id == parties_t.c.id))
        .where(or_(*conditions))
        .order_by(accounts_t.c.id)
        .with_for_update(of=accounts_t)
    )
    return Locked([LockedAccount(*row) for row in conn.execute(query)])


_insert_entry = insert(entries_t).returning(entries_t.c.id)
_insert_postings = insert(postings_t)
_update_balance = (
    update(accounts_t)
    .where(accounts_t.c.id == bindparam("account"))
    .values(balance=accounts_t.c.balance + bindparam("delta"))
)


def post(
    conn: Connection,
    *,
    kind: str,
    legs: list[Leg],
    actor_user_id: int | None,
    memo: str | None = None,
    reverses_id: int | None = None,
    details: dict | None = None,
) -> int:
    """Write one entry of ``legs`` on accounts already locked; return the entry id.

    Refuses (before writing anything) an entry that does not balance per currency, a
    zero leg, a leg in the wrong currency, and any balance that would go below zero on
    an account that does not allow it.
    """
    totals: dict[str, int] = defaultdict(int)
    deltas: dict[int, int] = defaultdict(int)
    accounts: dict[int, LockedAccount] = {}
    for leg in legs:
        if leg.amount == 0:
            raise ValueError("a posting of zero is meaningless")
        totals[leg.account.currency] += leg.amount
        deltas[leg.account.id] += leg.amount
        accounts[leg.account.id] = leg.account
    if any(totals.values()) or len(legs) < 2:
        raise ValueError(f"unbalanced entry {kind}: {dict(totals)}")
    for account_id, delta in deltas.items():
        account = accounts[account_id]
        if delta < 0 and not account.allow_negative and account.balance + delta < 0:
            error = _SHORTFALL_ERRORS.get(account.system_code, InsufficientFunds)
            raise error(account=account.party_code or account.system_code)

    entry_id = conn.execute(
        _insert_entry,
        {
            "kind": kind,
            "actor_user_id": actor_user_id,
            "memo": memo,
            "reverses_id": reverses_id,
            "details": json.dumps(details, sort_keys=True) if details else None,
        },
    ).scalar_one()
    conn.execute(
        _insert_postings,
        [
            {
                "entry_id": entry_id,
                "account_id": leg.account.id,
                "currency": leg.account.currency,
                "amount": leg.amount,
            }
            for leg in legs
        ],
    )
    conn.execute(
        _update_balance,
        [{"account": a, "delta": d} for a, d in sorted(deltas.items()) if d],
    )
    return entry_id
