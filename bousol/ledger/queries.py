"""Read models for pages and the API: balances, statements, the money supply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import Connection, func, select

from bousol.ledger.models import (
    BACKING_ACCOUNTS,
    Account,
    Entry,
    Party,
    Posting,
    SystemAccount,
    User,
)
from bousol.ledger.text import N_

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
parties_t, users_t = Party.__table__, User.__table__

KIND_LABELS = {
    "exchange": N_("Change euros → Bou'Sols"),
    "payment": N_("Paiement"),
    "reconversion": N_("Reconversion en euros"),
    "reversal": N_("Contre-passation"),
    "subsidy": N_("Subvention au fonds de bonification"),
    "cash_deposit": N_("Remise de caisse"),
}


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    kind: str
    created_at: dt.datetime
    memo: str | None
    currency: str
    amount: int  # signed, from the party's side
    counterparty: str | None  # "P-000001 Boulangerie …", or None (the bank)
    reverses_id: int | None


def party_balances(conn: Connection, party_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(accounts_t.c.currency, func.sum(accounts_t.c.balance))
        .where(accounts_t.c.party_id == party_id)
        .group_by(accounts_t.c.currency)
    ).all()
    balances = {"BSOL": 0, "EUR": 0}
    balances.update({currency: int(total) for currency, total in rows})
    return balances


def party_statement(
    conn: Connection, party_id: int, *, limit: int = 20, before_entry_id: int | None = None
) -> list[StatementLine]:
    """The party's latest entries, newest first, each with its signed amount."""
    query = (
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
               entries_t.c.reverses_id, postings_t.c.currency,
               func.sum(postings_t.c.amount).label("amount"))
        .select_from(
            postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id)
            .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        )
        .where(accounts_t.c.party_id == party_id)
        .group_by(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
                  entries_t.c.reverses_id, postings_t.c.currency)
        .order_by(entries_t.c.id.desc())
        .limit(limit)
    )
    if before_entry_id is not None:
        query = query.where(entries_t.c.id < before_entry_id)
    rows = conn.execute(query).all()
    others = _counterparties(conn, [r.id for r in rows], party_id)
    return [
        StatementLine(r.id, r.kind, r.created_at, r.memo, r.currency, int(r.amount),
                      others.get(r.id), r.reverses_id)
        for r in rows
    ]


def _counterparties(conn: Connection, entry_ids: list[int], party_id: int) -> dict[int, str]:
    if not entry_ids:
        return {}
    rows = conn.execute(
        select(postings_t.c.entry_id, parties_t.c.code, parties_t.c.name)
        .select_from(
            postings_t.join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
            .join(parties_t, parties_t.c.id == accounts_t.c.party_id)
        )
        .where(postings_t.c.entry_id.in_(entry_ids), parties_t.c.id != party_id)
    ).all()
    return {r.entry_id: f"{r.code} {r.name}" for r in rows}


def system_accounts(conn: Connection) -> list:
    return conn.execute(
        select(accounts_t.c.system_code, accounts_t.c.label, accounts_t.c.currency,
               accounts_t.c.balance)
        .where(accounts_t.c.system_code.is_not(None))
        .order_by(accounts_t.c.currency, accounts_t.c.id)
    ).all()


@dataclass(frozen=True)
class MoneySupply:
    bsol_in_circulation: int
    bsol_electronic: int
    bsol_notes: int
    eur_backing: int  # reserve + desk cash not yet banked
    eur_reserve: int
    bonus_fund: int

    @property
    def coverage_ratio(self) -> Fraction | None:
        if not self.bsol_in_circulation:
            return None
        return Fraction(self.eur_backing, self.bsol_in_circulation)


def money_supply(conn: Connection) -> MoneySupply:
    balances = dict(
        conn.execute(
            select(accounts_t.c.system_code, accounts_t.c.balance).where(
                accounts_t.c.system_code.is_not(None)
            )
        ).all()
    )
    electronic = conn.execute(
        select(func.coalesce(func.sum(accounts_t.c.balance), 0)).where(
            accounts_t.c.party_id.is_not(None), accounts_t.c.currency == "BSOL"
        )
    ).scalar_one()
    return MoneySupply(
        bsol_in_circulation=-balances[SystemAccount.ISSUANCE.value],
        bsol_electronic=int(electronic),
        bsol_notes=balances[SystemAccount.NOTES_CIRCULATION.value],
        eur_backing=sum(balances[a.value] for a in BACKING_ACCOUNTS),
        eur_reserve=balances[SystemAccount.EUR_RESERVE.value],
        bonus_fund=balances[SystemAccount.BONUS_FUND.value],
    )


@dataclass(frozen=True)
class JournalLine:
    entry_id: int
    kind: str
    created_at: dt.datetime
    memo: str | None
    actor: str | None
    bsol_moved: int  # sum of the positive BSOL postings
    eur_moved: int
    reverses_id: int | None


def journal(conn: Connection, *, limit: int = 30) -> list[JournalLine]:
    moved = (
        select(postings_t.c.entry_id,
               func.sum(func.abs(postings_t.c.amount)).label("moved"), postings_t.c.currency)
        .group_by(postings_t.c.entry_id, postings_t.c.currency)
        .subquery()
    )
    recent = (
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
               entries_t.c.reverses_id, users_t.c.username)
        .select_from(entries_t.outerjoin(users_t, users_t.c.id == entries_t.c.actor_user_id))
        .order_by(entries_t.c.id.desc())
        .limit(limit)
    ).subquery()
    rows = conn.execute(
        select(recent, moved.c.currency, moved.c.moved)
        .select_from(recent.join(moved, moved.c.entry_id == recent.c.id))
        .order_by(recent.c.id.desc())
    ).all()
    lines: dict[int, dict] = {}
    for r in rows:
        line = lines.setdefault(r.id, {
            "entry_id": r.id, "kind": r.kind, "created_at": r.created_at, "memo": r.memo,
            "actor": r.username, "bsol_moved": 0, "eur_moved": 0, "reverses_id": r.reverses_id,
        })
        line["bsol_moved" if r.currency == "BSOL" else "eur_moved"] = int(r.moved) // 2
    return [JournalLine(**line) for line in lines.values()]
