"""The seals of closed periods (migration 0016): what ``flask bousol verify --seal``
recorded about each closed month of the journal, so that a nightly ``verify`` rechecks
only what is new plus a sample of the rest (bousol/ledger/books/seals.py, docs/ledger.md
"Vérification incrémentale").

A seal covers one Paris month: the entries with ``after_entry_id < id <= last_entry_id``,
their counts, a SHA-256 digest of those entries and their postings, each account's sum of
postings in the month (``period_seal_accounts``), and the audit chain's head when it was
sealed. Seals chain like the audit trail (``prev_hash`` → ``hash``) and both tables are
append-only (triggers on PostgreSQL and SQLite).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bousol.ledger.kernel.models import Base, utcnow


class PeriodSeal(Base):
    __tablename__ = "period_seals"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    month: Mapped[dt.date] = mapped_column(Date, unique=True)  # the month's first day
    after_entry_id: Mapped[int] = mapped_column(BigInteger)  # = the previous seal's last
    last_entry_id: Mapped[int] = mapped_column(BigInteger)  # = after_entry_id when empty
    entries: Mapped[int] = mapped_column(BigInteger)
    postings: Mapped[int] = mapped_column(BigInteger)
    journal_digest: Mapped[str] = mapped_column(String(64))
    accounts_digest: Mapped[str] = mapped_column(String(64))  # of its period_seal_accounts
    audit_seq: Mapped[int] = mapped_column(BigInteger)  # the audit head when sealed
    audit_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class PeriodSealAccount(Base):
    """One account's sum of postings (signed cents) in a sealed month; only the accounts
    the month's postings touched."""

    __tablename__ = "period_seal_accounts"

    seal_seq: Mapped[int] = mapped_column(ForeignKey("period_seals.seq"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    postings: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
