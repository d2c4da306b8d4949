"""The posting engine: lock accounts, check limits, write one balanced entry.

This is the hot path of every operation, so it speaks SQLAlchemy Core, not the ORM:
one SELECT … FOR UPDATE for all the accounts involved (ascending id order, so two
transfers crossing each other never deadlock), one INSERT for the entry, one
executemany for the postings and one for the balances.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, bindparam, insert, or_, select, update

from bousol.ledger.books import account_days, hooks
from bousol.ledger.books.hooks import PostedEntry
from bousol.ledger.books.models import Account, Entry, Party, Posting, SystemAccount
from bousol.ledger.kernel.driver_sql import DriverStatement, timestamp
from bousol.ledger.kernel.errors import (
    BonusFundInsufficient,
    DeskCashInsufficient,
    DomainError,
    InsufficientFunds,
    ReserveInsufficient,
    UnknownAccount,
    UnknownParty,
)
from bousol.ledger.kernel.models import utcnow

accounts_t = Account.__table__
entries_t = Entry.__table__
postings_t = Posting.__table__
parties_t = Party.__table__

# Which error a system account raises when it would go below zero.
_SHORTFALL_ERRORS: dict[str | None, type[DomainError]] = {
    SystemAccount.EUR_RESERVE.value: ReserveInsufficient,
    SystemAccount.BONUS_FUND.value: BonusFundInsufficient,
    SystemAccount.DESK_CASH.value: DeskCashInsufficient,
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


@dataclass(frozen=True, slots=True)
class Leg:
    account: LockedAccount
    amount: int  # signed cents, + into the account


class Locked:
    """The accounts an operation holds locked, found by system code or party code."""

    def __init__(self, rows: list[LockedAccount]):
        self.rows = rows
        self._by_system = {r.system_code: r for r in rows if r.system_code}
        self._by_party = {
            (r.party_code, r.currency): r for r in rows if r.party_code and not r.system_code
        }

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
)


@functools.cache
def _lock_statement(
    n_system: int, n_codes: int, n_currencies: int, n_ids: int
) -> DriverStatement:
    """SELECT … FOR UPDATE of the accounts named, one statement per shape of request."""
    conditions: list[ColumnElement[bool]] = []
    if n_system:
        conditions.append(
            accounts_t.c.system_code.in_([bindparam(f"s{i}") for i in range(n_system)])
        )
    if n_codes:
        conditions.append(
            parties_t.c.code.in_([bindparam(f"c{i}") for i in range(n_codes)])
            & accounts_t.c.currency.in_([bindparam(f"k{i}") for i in range(n_currencies)])
            & (accounts_t.c.purpose == bindparam("purpose"))
        )
    if n_ids:
        conditions.append(accounts_t.c.id.in_([bindparam(f"a{i}") for i in range(n_ids)]))
    return DriverStatement(
        select(*_lock_columns)
        .select_from(accounts_t.outerjoin(parties_t, accounts_t.c.party_id == parties_t.c.id))
        .where(or_(*conditions))
        .order_by(accounts_t.c.id)
        .with_for_update(of=accounts_t)
    )


def lock_accounts(
    conn: Connection,
    *,
    system: tuple[SystemAccount, ...] = (),
    party_codes: tuple[str, ...] = (),
    account_ids: tuple[int, ...] = (),
    currencies: tuple[str, ...] = ("BSOL",),
) -> Locked:
    """Lock (FOR UPDATE, ascending id) and return the accounts named, in one query:
    system accounts by code, the main accounts of parties by code in ``currencies``,
    and any account by id."""
    system_codes = tuple(dict.fromkeys(s.value for s in system))
    params: dict[str, object] = {"purpose": "main"}
    params.update({f"k{i}": currency for i, currency in enumerate(currencies)})
    params.update({f"s{i}": code for i, code in enumerate(system_codes)})
    params.update({f"c{i}": code for i, code in enumerate(party_codes)})
    params.update({f"a{i}": account for i, account in enumerate(account_ids)})
    statement = _lock_statement(
        len(system_codes), len(party_codes), len(currencies) if party_codes else 0,
        len(account_ids),
    )
    return Locked([LockedAccount(*row) for row in statement.rows(conn, params)])


_insert_entry = DriverStatement(
    insert(entries_t)
    .values({c: bindparam(c) for c in ("kind", "created_at", "actor_user_id", "memo",
                                       "reverses_id", "details")})
    .returning(entries_t.c.id)
)
_insert_postings = DriverStatement(
    insert(postings_t).values(
        {c: bindparam(c) for c in ("entry_id", "account_id", "currency", "amount")}
    )
)
_update_balance = DriverStatement(
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

    Refuses (before writing anything) any balance that would go below zero on an
    account that does not allow it (a domain error). An unbalanced entry or a zero leg
    is a programming error (``ValueError``): operations build their legs, users do not.
    Each posting takes its account's currency; the database's composite foreign key
    backs that.
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

    created_at = utcnow()
    inserted = _insert_entry.first(
        conn,
        {
            "kind": kind,
            "created_at": timestamp(conn, created_at),
            "actor_user_id": actor_user_id,
            "memo": memo,
            "reverses_id": reverses_id,
            "details": json.dumps(details, sort_keys=True) if details else None,
        },
    )
    assert inserted is not None  # INSERT … RETURNING id: always its one row
    (entry_id,) = inserted
    _insert_postings.executemany(
        conn,
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
    updates = [{"account": a, "delta": d} for a, d in sorted(deltas.items()) if d]
    if updates:
        _update_balance.executemany(conn, updates)
    account_days.record(conn, entry_id=entry_id, kind=kind, created_at=created_at,
                        deltas=deltas)
    for after in hooks.after_post_hooks():  # the domains' figures, in this transaction
        after(conn, PostedEntry(entry_id, kind, created_at, actor_user_id, tuple(legs),
                                reverses_id, details))
    return entry_id
