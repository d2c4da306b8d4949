"""The CCAS's social aid: programmes, beneficiaries, vouchers, their batches and
redemptions.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bousol.ledger.kernel.models import Base, utcnow

VOUCHER_STATUSES = ("open", "redeemed", "expired", "cancelled")


class AidProgramme(Base):
    """A CCAS aid programme: a euro budget, a period, the filières its vouchers buy.

    Its Bou'Sols sit in an account of its own (the CCAS's, purpose ``programme:<id>``):
    funding fills it (an exchange), granting a voucher empties it into the vouchers
    outstanding, expiry and cancellation refill it.
    """

    __tablename__ = "aid_programmes"
    __table_args__ = (
        CheckConstraint("budget_eur_cents >= 0", name="budget_not_negative"),
        CheckConstraint("ends_on >= starts_on", name="period"),
        CheckConstraint("default_validity_days > 0", name="validity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ccas_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    name: Mapped[str] = mapped_column(String(200))
    budget_eur_cents: Mapped[int] = mapped_column(BigInteger)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    # Comma-separated filière slugs the vouchers may buy; NULL: every filière.
    filieres: Mapped[str | None] = mapped_column(String(200))
    default_validity_days: Mapped[int] = mapped_column(Integer)
    multi_use: Mapped[bool] = mapped_column(Boolean)  # may a voucher be spent in several goes
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Beneficiary(Base):
    """Someone the CCAS helps, known to the ledger by the CCAS's reference only. The name
    is the CCAS's own note (its staff only); erasing keeps the vouchers, anonymous."""

    __tablename__ = "beneficiaries"
    __table_args__ = (UniqueConstraint("ccas_party_id", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ccas_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    ref: Mapped[str] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Voucher(Base):
    """An aid voucher (bon d'aide): its value waits in ``vouchers_outstanding`` until a
    prestataire redeems it, it expires or the CCAS cancels it.

    open → redeemed | expired | cancelled; ``remaining_cents`` > 0 exactly while open
    (expiry and cancellation return what is left to where it came from).
    """

    __tablename__ = "vouchers"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'redeemed', 'expired', 'cancelled')",
                        name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("remaining_cents >= 0 AND remaining_cents <= amount_cents",
                        name="remaining_within_amount"),
        CheckConstraint("(status = 'open') = (remaining_cents > 0)", name="open_remaining"),
        Index(None, "status", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # without its check character
    ccas_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("aid_programmes.id"),
                                                     index=True)
    source_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    # Earmarked: credited to this soliste's account view instead of printed on paper.
    soliste_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("voucher_batches.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    remaining_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    valid_until: Mapped[dt.date] = mapped_column(Date)
    filieres: Mapped[str | None] = mapped_column(String(200))  # NULL: every filière
    multi_use: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    grant_entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), unique=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    close_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))


class VoucherBatch(Base):
    """Vouchers granted together from one CSV file (all or nothing), printed together."""

    __tablename__ = "voucher_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    ccas_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("aid_programmes.id"))
    count: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class VoucherRedemption(Base):
    """A purchase paid with a voucher: which voucher, which prestataire, how much
    (append-only; the entry moves the Bou'Sols)."""

    __tablename__ = "voucher_redemptions"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    voucher_id: Mapped[int] = mapped_column(ForeignKey("vouchers.id"), index=True)
    prestataire_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
