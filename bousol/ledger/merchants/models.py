"""The prestataires: approval decisions, payment requests (QR codes), refunds.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from bousol.ledger.kernel.models import Base, utcnow


class ApprovalDecision(Base):
    """One step of a prestataire's approval: who, when, from which status to which,
    and why (append-only; the applicant sees them)."""

    __tablename__ = "approval_decisions"
    __table_args__ = (
        CheckConstraint(
            "action IN ('submit', 'approve', 'refuse', 'suspend', 'reinstate', 'amend')",
            name="action",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(1000))
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PaymentRequest(Base):
    """A prestataire asks to be paid: at the till (anyone who opens the link or types
    the short code pays it) or, in the B2B phase, an invoice addressed to one customer
    prestataire, who accepts or declines it. Paid at most once (the entry is unique).

    open → paid | declined | cancelled; an open request past ``expires_at`` is expired.
    """

    __tablename__ = "payment_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('till', 'invoice')", name="kind"),
        CheckConstraint("status IN ('open', 'paid', 'declined', 'cancelled')", name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("(status = 'paid') = (paid_entry_id IS NOT NULL)", name="paid_entry"),
        CheckConstraint("kind = 'till' OR payer_party_id IS NOT NULL", name="invoice_payer"),
        Index(None, "payee_party_id", "id"),
        Index(None, "payer_party_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(43), unique=True)  # in the pay link
    short_code: Mapped[str] = mapped_column(String(8), unique=True)  # typed at the till
    kind: Mapped[str] = mapped_column(String(8))
    payee_party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    payer_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    paid_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"), unique=True)
    paid_by_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decline_reason: Mapped[str | None] = mapped_column(String(500))


class Refund(Base):
    """A refund entry and the payment it gives back (fully or partly); append-only."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_cents > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), index=True)
    refund_entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), unique=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
