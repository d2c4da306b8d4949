"""Read models for pages and the API: balances, statements, the money supply."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from fractions import Fraction

from sqlalchemy import Connection, case, func, select

from bousol.ledger.books import hooks
from bousol.ledger.books.models import (
    BACKING_ACCOUNTS,
    Account,
    Entry,
    Party,
    Posting,
    SystemAccount,
    User,
)
from bousol.ledger.kernel.inputs import normalise_party_code
from bousol.ledger.kernel.rows import Rows
from bousol.ledger.kernel.text import N_

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
parties_t, users_t = Party.__table__, User.__table__

KIND_LABELS = {
    "exchange": N_("Change euros → Bou'Sols"),
    "payment": N_("Paiement"),
    "reconversion": N_("Reconversion en euros"),
    "reversal": N_("Contre-passation"),
    "subsidy": N_("Subvention au fonds de bonification"),
    "cash_deposit": N_("Remise de la caisse au fonds de garantie"),
    "payout": N_("Virements SEPA de reconversion"),
    "cash_discrepancy": N_("Écart de caisse (clôture)"),
    "membership_fee": N_("Cotisation annuelle"),
    "note_deposit": N_("Dépôt de billets"),
    "note_reactivation": N_("Réactivation de billets"),
    "refund": N_("Remboursement"),
    "voucher_grant": N_("Bon d'aide attribué"),
    "voucher_redemption": N_("Bon d'aide encaissé"),
    "voucher_expiry": N_("Bon d'aide expiré"),
    "voucher_cancellation": N_("Bon d'aide annulé"),
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
    """The party's latest entries, newest first, each with its signed amount (the
    statement's keyset scan: its cost is the page's, not the history's)."""
    from bousol.ledger.books import statements  # statements names kinds from here

    page = statements.statement_page(conn, party_id, statements.Filters(), limit=limit,
                                     before_entry_id=before_entry_id)
    return [
        StatementLine(line.entry_id, line.kind, line.created_at, line.memo, line.currency,
                      line.amount, line.counterparty, line.reverses_id)
        for line in page.lines
    ]


def system_accounts(conn: Connection) -> Rows:
    """The bank's and the association's accounts, and the world outside, with owners."""
    return conn.execute(
        select(accounts_t.c.system_code, accounts_t.c.label, accounts_t.c.currency,
               accounts_t.c.balance, parties_t.c.name.label("owner"))
        .select_from(accounts_t.outerjoin(parties_t, parties_t.c.id == accounts_t.c.party_id))
        .where(accounts_t.c.system_code.is_not(None))
        .order_by(accounts_t.c.currency, accounts_t.c.id)
    ).all()


def coverage(backing: int, circulation: int) -> Fraction | None:
    """Euros of backing per Bou'Sol in circulation (None while nothing circulates)."""
    return Fraction(backing, circulation) if circulation else None


@dataclass(frozen=True)
class MoneySupply:
    bsol_in_circulation: int
    bsol_electronic: int
    bsol_notes: int
    eur_backing: int  # reserve + desk cash not yet banked
    eur_reserve: int
    bonus_fund: int
    bsol_vouchers: int = 0  # on aid vouchers granted, not yet spent (beside electronic)

    @property
    def coverage_ratio(self) -> Fraction | None:
        return coverage(self.eur_backing, self.bsol_in_circulation)


def money_supply(conn: Connection) -> MoneySupply:
    balances = dict(
        conn.execute(
            select(accounts_t.c.system_code, accounts_t.c.balance).where(
                accounts_t.c.system_code.is_not(None)
            )
        ).all()
    )
    # Every entry balances per currency, so the members' Bou'Sol balances add up to
    # minus the system's: a sum over a dozen accounts rather than over every member's
    # (``verify`` proves the entries balanced and each balance equal to its postings).
    electronic = -conn.execute(
        select(func.coalesce(func.sum(accounts_t.c.balance), 0)).where(
            accounts_t.c.system_code.is_not(None), accounts_t.c.currency == "BSOL"
        )
    ).scalar_one()
    return MoneySupply(
        bsol_in_circulation=-balances[SystemAccount.ISSUANCE.value],
        bsol_electronic=int(electronic),
        bsol_notes=balances[SystemAccount.NOTES_CIRCULATION.value],
        eur_backing=sum(balances[a.value] for a in BACKING_ACCOUNTS),
        eur_reserve=balances[SystemAccount.EUR_RESERVE.value],
        bonus_fund=balances[SystemAccount.BONUS_FUND.value],
        bsol_vouchers=balances[SystemAccount.VOUCHERS_OUTSTANDING.value],
    )


@dataclass(frozen=True)
class JournalLine:
    entry_id: int
    kind: str
    created_at: dt.datetime
    memo: str | None
    actor: str | None
    bsol_moved: int  # the Bou'Sols the entry moves (sum of its positive BSOL postings)
    eur_in: int  # euros that entered the system (+) or left it (−) with this entry
    reverses_id: int | None
    # An aid voucher's entry (issue 13): the memo (the voucher's code) and the actor (a
    # soliste spending an earmarked voucher) are not shown outside the CCAS; the page
    # says "bénéficiaire CCAS" and, for a redemption, the prestataire that took it.
    aid: bool = False
    aid_merchant: str | None = None


def journal(conn: Connection, *, limit: int = 30) -> list[JournalLine]:
    """The latest entries, newest first, with what they moved."""
    outside = (
        select(accounts_t.c.id).where(accounts_t.c.system_code == SystemAccount.EUR_OUTSIDE.value)
        .scalar_subquery()
    )
    bsol = func.sum(case((postings_t.c.currency == "BSOL", func.abs(postings_t.c.amount)),
                         else_=0))
    eur_in = func.sum(case((postings_t.c.account_id == outside, -postings_t.c.amount), else_=0))
    recent = select(entries_t.c.id).order_by(entries_t.c.id.desc()).limit(limit).subquery()
    rows = conn.execute(
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
               users_t.c.username, bsol.label("bsol"), eur_in.label("eur_in"),
               entries_t.c.reverses_id)
        .select_from(
            entries_t.join(recent, recent.c.id == entries_t.c.id)
            .join(postings_t, postings_t.c.entry_id == entries_t.c.id)
            .outerjoin(users_t, users_t.c.id == entries_t.c.actor_user_id)
        )
        .group_by(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
                  users_t.c.username, entries_t.c.reverses_id)
        .order_by(entries_t.c.id.desc())
    ).all()
    # The domains' private entries (the CCAS's aid vouchers, books/hooks.py): neither
    # the memo (a voucher's code is a bearer instrument, and a link to its
    # beneficiary's file) nor, unless the domain says so, who acted.
    private: dict[str, hooks.PrivateKinds] = {}
    counterparts: dict[int, str] = {}
    for kinds in hooks.private_specs():
        private.update(dict.fromkeys(kinds.kinds, kinds))
        ids = [r.id for r in rows if r.kind in kinds.kinds]
        if ids:
            counterparts.update(kinds.counterpart(conn, ids))
    lines = []
    for r in rows:
        spec = private.get(r.kind)
        if spec is not None:
            staff = r.username if r.kind in spec.staff_named else None
            lines.append(JournalLine(r.id, r.kind, r.created_at, None, staff,
                                     int(r.bsol) // 2, int(r.eur_in), r.reverses_id,
                                     aid=True, aid_merchant=counterparts.get(r.id)))
        else:
            lines.append(JournalLine(r.id, r.kind, r.created_at, r.memo, r.username,
                                     int(r.bsol) // 2, int(r.eur_in), r.reverses_id))
    return lines


def search_parties(conn: Connection, text: str, *, kinds: tuple[str, ...],
                   limit: int = 20) -> Rows:
    """Parties of these kinds whose code, name or phone contains ``text``."""
    needle = (text or "").strip().lower()
    if not needle:
        return []
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches = (func.lower(parties_t.c.code).like(pattern, escape="\\")
               | func.lower(parties_t.c.name).like(pattern, escape="\\"))
    code = normalise_party_code(text)
    if code != (text or "").strip().upper():  # "p 000002" typed for P-000002
        matches = matches | (parties_t.c.code == code)
    digits = re.sub(r"[^0-9]", "", needle)
    if len(digits) >= 4:  # a phone number, typed with or without spaces
        matches = matches | parties_t.c.phone.like(f"%{digits}%")
    return conn.execute(
        select(parties_t.c.code, parties_t.c.name, parties_t.c.kind, parties_t.c.filiere,
               parties_t.c.status, parties_t.c.phone, parties_t.c.membership_until)
        .where(parties_t.c.kind.in_(kinds), matches)
        .order_by(parties_t.c.name)
        .limit(limit)
    ).all()


def party_by_code(conn: Connection, code: str):
    return conn.execute(
        select(parties_t.c.id, parties_t.c.code, parties_t.c.name, parties_t.c.kind,
               parties_t.c.filiere, parties_t.c.status, parties_t.c.membership_until)
        .where(parties_t.c.code == code)
    ).first()


@dataclass(frozen=True)
class ExchangeReceipt:
    entry_id: int
    created_at: dt.datetime
    clerk: str | None
    party_code: str
    party_name: str
    euro_cents: int
    bousol_cents: int
    tender: str
    reversed: bool
    form: str = "electronic"  # or "notes": the Bou'Sols were handed out as paper notes


def _receipt_legs(conn: Connection, entry_id: int) -> Rows:
    """An entry's postings with their account's system code and party, for receipts."""
    return conn.execute(
        select(postings_t.c.amount, postings_t.c.currency, accounts_t.c.system_code,
               parties_t.c.code, parties_t.c.name)
        .select_from(postings_t.join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
                     .outerjoin(parties_t, parties_t.c.id == accounts_t.c.party_id))
        .where(postings_t.c.entry_id == entry_id)
    ).all()


def _is_reversed(conn: Connection, entry_id: int) -> bool:
    return conn.execute(
        select(func.count()).where(entries_t.c.reverses_id == entry_id)).scalar_one() > 0


def exchange_receipt(conn: Connection, entry_id: int) -> ExchangeReceipt | None:
    """What the receipt of an exchange shows, rebuilt from the entry (so it reprints)."""
    entry = conn.execute(
        select(entries_t.c.id, entries_t.c.created_at, entries_t.c.details, users_t.c.username)
        .select_from(entries_t.outerjoin(users_t, users_t.c.id == entries_t.c.actor_user_id))
        .where(entries_t.c.id == entry_id, entries_t.c.kind == "exchange")
    ).first()
    if entry is None:
        return None
    legs = _receipt_legs(conn, entry_id)
    euros = -next(leg.amount for leg in legs if leg.system_code == SystemAccount.EUR_OUTSIDE)
    details = json.loads(entry.details or "{}")
    if details.get("form") == "notes":
        # The notes went to the member's hands, not to an account: the entry names them.
        member = party_by_code(conn, details["party"])
        code, name = member.code, member.name
        bousols = next(leg.amount for leg in legs
                       if leg.system_code == SystemAccount.NOTES_CIRCULATION)
    else:
        leg = next(leg for leg in legs if leg.system_code is None)
        code, name, bousols = leg.code, leg.name, leg.amount
    return ExchangeReceipt(entry.id, entry.created_at, entry.username, code, name,
                           int(euros), int(bousols), details.get("tender", ""),
                           _is_reversed(conn, entry_id), details.get("form", "electronic"))


@dataclass(frozen=True)
class CoverageDay:
    day: dt.date
    bsol_in_circulation: int
    bsol_notes: int
    eur_backing: int
    bonus_fund: int

    @property
    def coverage_ratio(self) -> Fraction | None:
        return coverage(self.eur_backing, self.bsol_in_circulation)


_HISTORY_ACCOUNTS = (SystemAccount.ISSUANCE, SystemAccount.NOTES_CIRCULATION,
                     SystemAccount.EUR_RESERVE, SystemAccount.DESK_CASH,
                     SystemAccount.BONUS_FUND)


def coverage_history(conn: Connection, *, days: int = 90) -> list[CoverageDay]:
    """End-of-day figures for the last ``days`` Paris days that saw entries, each the
    running total up to that day, from the maintained daily figures (one row per
    account and day: the journal is never summed here)."""
    from bousol.ledger.books import account_days

    codes = {row.id: row.system_code for row in conn.execute(
        select(accounts_t.c.id, accounts_t.c.system_code).where(
            accounts_t.c.system_code.in_([a.value for a in _HISTORY_ACCOUNTS])))}
    running = dict.fromkeys((a.value for a in _HISTORY_ACCOUNTS), 0)
    by_day: dict[dt.date, dict[str, int]] = {}
    for day, account_id, amount in account_days.daily_deltas(conn, list(codes)):
        running[codes[account_id]] += amount
        by_day[day] = dict(running)
    history = [
        CoverageDay(
            day=key,
            bsol_in_circulation=-totals[SystemAccount.ISSUANCE.value],
            bsol_notes=totals[SystemAccount.NOTES_CIRCULATION.value],
            eur_backing=totals[SystemAccount.EUR_RESERVE.value]
            + totals[SystemAccount.DESK_CASH.value],
            bonus_fund=totals[SystemAccount.BONUS_FUND.value],
        )
        for key, totals in by_day.items()
    ]
    return history[-days:]


@dataclass(frozen=True)
class ReconversionReceipt:
    entry_id: int
    created_at: dt.datetime
    clerk: str | None
    party_code: str
    party_name: str
    bousol_cents: int
    fee_cents: int
    euro_cents: int  # owed to the prestataire, paid by transfer
    reversed: bool
    source: str = "account"  # or "notes": paper notes deposited at the desk


def reconversion_receipt(conn: Connection, entry_id: int) -> ReconversionReceipt | None:
    entry = conn.execute(
        select(entries_t.c.id, entries_t.c.created_at, users_t.c.username)
        .select_from(entries_t.outerjoin(users_t, users_t.c.id == entries_t.c.actor_user_id))
        .where(entries_t.c.id == entry_id, entries_t.c.kind == "reconversion")
    ).first()
    if entry is None:
        return None
    legs = _receipt_legs(conn, entry_id)
    euros = next(leg for leg in legs if leg.system_code is None and leg.currency == "EUR")
    bousols = next(leg for leg in legs if leg.currency == "BSOL" and (
        leg.system_code is None or leg.system_code == SystemAccount.NOTES_CIRCULATION))
    fee = sum(leg.amount for leg in legs if leg.system_code == SystemAccount.FEES_INCOME)
    return ReconversionReceipt(entry.id, entry.created_at, entry.username, euros.code,
                               euros.name, -int(bousols.amount), int(fee),
                               int(euros.amount), _is_reversed(conn, entry_id),
                               "account" if bousols.system_code is None else "notes")


@dataclass(frozen=True)
class NotesSlip:
    """A deposit of notes credited to an account, or a reactivation of expired notes."""

    entry_id: int
    kind: str  # "note_deposit" or "note_reactivation"
    created_at: dt.datetime
    clerk: str | None
    party_code: str | None
    party_name: str | None
    face_cents: int
    fee_cents: int  # euros (reactivation)
    tender: str
    mode: str  # "credit" (deposit), "stamp" or "replace" (reactivation)
    valid_until: dt.date | None  # the new date of stamped notes
    reversed: bool


def notes_slip(conn: Connection, entry_id: int) -> NotesSlip | None:
    entry = conn.execute(
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.details,
               users_t.c.username)
        .select_from(entries_t.outerjoin(users_t, users_t.c.id == entries_t.c.actor_user_id))
        .where(entries_t.c.id == entry_id,
               entries_t.c.kind.in_(("note_deposit", "note_reactivation")))
    ).first()
    if entry is None:
        return None
    legs = _receipt_legs(conn, entry_id)
    details = json.loads(entry.details or "{}")
    if entry.kind == "note_deposit":
        member = next(leg for leg in legs if leg.system_code is None)
        return NotesSlip(entry.id, entry.kind, entry.created_at, entry.username, member.code,
                         member.name, int(member.amount), 0, "", "credit", None,
                         _is_reversed(conn, entry_id))
    fee = sum(leg.amount for leg in legs if leg.system_code == SystemAccount.FEES_INCOME)
    return NotesSlip(entry.id, entry.kind, entry.created_at, entry.username, None, None,
                     int(details.get("face", 0)), int(fee), details.get("tender", ""),
                     details.get("mode", ""),
                     dt.date.fromisoformat(details["until"]) if details.get("until") else None,
                     _is_reversed(conn, entry_id))
