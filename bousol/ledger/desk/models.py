"""The exchange desk: paper notes and their moves, payout batches, IBAN changes, exchange
approvals, cash closings, reconversion requests.
"""

from __future__ import annotations

import datetime as dt
import enum

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bousol.ledger.kernel.models import Base, utcnow


class Desk(Base):
    """A counter of the Crédit Municipal where notes are kept and handed out."""

    __tablename__ = "desks"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


NOTE_DENOMINATIONS = (1, 2, 5, 10, 20)


class NotePlace(enum.StrEnum):
    PRINTED = "printed"  # delivered by the printer, registered, not yet in the vault
    VAULT = "vault"  # in the bank's safe
    DESK = "desk"  # at one desk (``desk_id``), ready to hand out
    CIRCULATION = "circulation"  # with the public: counted in notes_circulation
    RETURNED = "returned"  # came back (deposit, replacement), in the bank's hands
    DESTROYED = "destroyed"  # shredded; never comes back


class NoteSeries(Base):
    """A print run: its code starts every serial; its notes are valid until a date."""

    __tablename__ = "note_series"
    __table_args__ = (CheckConstraint("valid_until > printed_on", name="validity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    printed_on: Mapped[dt.date] = mapped_column(Date)
    valid_until: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Note(Base):
    """One paper note: one row per serial, so a serial is in exactly one place."""

    __tablename__ = "notes"
    __table_args__ = (
        CheckConstraint("denomination IN (1, 2, 5, 10, 20)", name="denomination"),
        CheckConstraint(
            "place IN ('printed', 'vault', 'desk', 'circulation', 'returned', 'destroyed')",
            name="place",
        ),
        CheckConstraint(
            "(place = 'desk' AND desk_id IS NOT NULL) OR (place <> 'desk' AND desk_id IS NULL)",
            name="desk_place",
        ),
        Index(None, "place", "desk_id", "denomination", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(20), unique=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("note_series.id"))
    denomination: Mapped[int] = mapped_column(Integer)
    place: Mapped[str] = mapped_column(String(16))
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"))
    # The series' date, pushed forward when the note is reactivated.
    valid_until: Mapped[dt.date] = mapped_column(Date)


class NoteMove(Base):
    """Notes that moved together from one place to another: who, when, why (append-only)."""

    __tablename__ = "note_moves"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(32))
    from_place: Mapped[str | None] = mapped_column(String(16))
    from_desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"))
    to_place: Mapped[str] = mapped_column(String(16))
    to_desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"))
    count: Mapped[int] = mapped_column(Integer)
    face_cents: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    memo: Mapped[str | None] = mapped_column(String(500))


class NoteMoveItem(Base):
    __tablename__ = "note_move_items"

    move_id: Mapped[int] = mapped_column(ForeignKey("note_moves.id"), primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("notes.id"), primary_key=True, index=True)


class PayoutBatch(Base):
    """A SEPA credit-transfer file of reconverted euros owed to prestataires.

    open → paid | cancelled; at most one open batch (a partial unique index).
    """

    __tablename__ = "payout_batches"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'paid', 'cancelled')", name="status"),
        CheckConstraint("total_cents > 0", name="total_positive"),
        Index("uq_payout_batches_one_open", "status", unique=True,
              sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    message_id: Mapped[str] = mapped_column(String(35), unique=True)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    # Released by a second user (migration 0012): open and released = file for the bank.
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    released_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    payouts: Mapped[list[Payout]] = relationship(back_populates="batch", order_by="Payout.id")


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        UniqueConstraint("batch_id", "party_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"))
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    # Copied when the batch is made: the file must say what was sent, whatever changes.
    name: Mapped[str] = mapped_column(String(140))
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    end_to_end_id: Mapped[str] = mapped_column(String(35))

    batch: Mapped[PayoutBatch] = relationship(back_populates="payouts")


class IbanChange(Base):
    """An IBAN the desk entered for a prestataire: it takes effect once the prestataire
    confirms it or an admin validates it, never the user who asked (migration 0012).

    requested → confirmed | cancelled; one requested change per prestataire.
    """

    __tablename__ = "iban_changes"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'confirmed', 'cancelled')", name="status"),
        CheckConstraint("(status = 'confirmed') = (confirmed_by_user_id IS NOT NULL)",
                        name="confirmed_by"),
        CheckConstraint("(status = 'requested') = (closed_at IS NULL)", name="closed"),
        CheckConstraint("confirmed_by_user_id IS NULL OR requested_by_user_id IS NULL "
                        "OR confirmed_by_user_id <> requested_by_user_id", name="two_people"),
        Index("uq_iban_changes_one_requested", "party_id", unique=True,
              sqlite_where=text("status = 'requested'"),
              postgresql_where=text("status = 'requested'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    confirmed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ExchangeApproval(Base):
    """An exchange above the thresholds (per operation, per member and Paris day) that
    waits for a second person: nothing moves until it is approved, and then the exchange
    is posted as any other (migration 0014, docs/duties.md).

    pending → approved | refused | cancelled; the approver is never the one who asked.
    ``amount_cents`` is the euros asked for.
    """

    __tablename__ = "exchange_approvals"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'refused', 'cancelled')",
                        name="status"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("tender IN ('cash', 'cheque', 'card', 'transfer')", name="tender"),
        CheckConstraint("rule IN ('operation', 'day')", name="rule"),
        CheckConstraint("(status = 'approved') = (entry_id IS NOT NULL)", name="approved_entry"),
        CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided"),
        CheckConstraint("status <> 'refused' OR reason IS NOT NULL", name="refusal_reason"),
        CheckConstraint("decided_by_user_id IS NULL OR requested_by_user_id IS NULL "
                        "OR decided_by_user_id <> requested_by_user_id", name="two_people"),
        Index(None, "status", "id"),
        Index(None, "party_id", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    tender: Mapped[str] = mapped_column(String(16))
    programme_id: Mapped[int | None] = mapped_column(ForeignKey("aid_programmes.id"))
    memo: Mapped[str | None] = mapped_column(String(500))
    rule: Mapped[str] = mapped_column(String(16))  # the threshold it is above
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(String(500))  # why it was refused
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"), unique=True)


class CashClosing(Base):
    """The end-of-day count of the desk's drawer (append-only: a closed day is closed)."""

    __tablename__ = "cash_closings"
    __table_args__ = (
        CheckConstraint(
            "discrepancy_cents = 0 OR (comment IS NOT NULL AND comment <> '')",
            name="discrepancy_explained",
        ),
        CheckConstraint("float_cents >= 0", name="float_not_negative"),
        CheckConstraint("sequence >= 1", name="sequence_positive"),
        # A day reopened by an admin is closed again under the next sequence (0013).
        UniqueConstraint("business_date", "sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date)
    sequence: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    closed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Entries up to this id are in this closing; the next one starts after it.
    last_entry_id: Mapped[int] = mapped_column(BigInteger)
    expected_cash_cents: Mapped[int] = mapped_column(BigInteger)
    counted_cash_cents: Mapped[int] = mapped_column(BigInteger)
    expected_cheque_cents: Mapped[int] = mapped_column(BigInteger)
    counted_cheque_cents: Mapped[int] = mapped_column(BigInteger)
    cheque_count: Mapped[int] = mapped_column(Integer)
    expected_card_cents: Mapped[int] = mapped_column(BigInteger)
    counted_card_cents: Mapped[int] = mapped_column(BigInteger)
    discrepancy_cents: Mapped[int] = mapped_column(BigInteger)  # counted − expected, all tenders
    float_cents: Mapped[int] = mapped_column(BigInteger)  # cash left in the drawer
    deposited_cents: Mapped[int] = mapped_column(BigInteger)  # handed to the reserve
    counts: Mapped[str] = mapped_column(Text)  # JSON: euro denomination (cents) → count
    comment: Mapped[str | None] = mapped_column(Text)
    discrepancy_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    deposit_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))


class CashClosingReopening(Base):
    """An admin reopened a closed day, with a reason (append-only; once per closing):
    the closing's discrepancy and deposit entries are reversed in the same unit of work
    (bousol/ledger/desk/closing.py, docs/ledger.md)."""

    __tablename__ = "cash_closing_reopenings"
    __table_args__ = (CheckConstraint("length(reason) >= 3", name="reason_given"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    closing_id: Mapped[int] = mapped_column(ForeignKey("cash_closings.id"), unique=True)
    reopened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    reopened_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)


class ReconversionRequest(Base):
    """A prestataire asks the bank to reconvert Bou'Sols; the desk executes it.

    requested → executed | cancelled (by the prestataire) | refused (by the bank).
    """

    __tablename__ = "reconversion_requests"
    __table_args__ = (
        CheckConstraint("status IN ('requested', 'executed', 'cancelled', 'refused')",
                        name="status"),
        CheckConstraint("bousol_cents > 0", name="amount_positive"),
        CheckConstraint("(status = 'executed') = (entry_id IS NOT NULL)", name="executed_entry"),
        Index(None, "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), index=True)
    bousol_cents: Mapped[int] = mapped_column(BigInteger)
    memo: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"), unique=True)
