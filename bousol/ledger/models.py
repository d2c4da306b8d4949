"""Typed SQLAlchemy models of the ledger (no Flask here).

Money columns are ``BigInteger`` cents. The database backs the rules the code enforces:
CHECK constraints on amounts and balances, a composite foreign key that keeps a
posting in its account's currency, a unique ``reverses_id`` (an entry is reversed at
most once), and triggers (see the migrations) that forbid updating or deleting entries
and postings, plus, on PostgreSQL, a deferred trigger that checks each entry balances
per currency at commit.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bousol.ledger.kernel import clock
from bousol.ledger.kernel.text import N_

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return clock.now()


def new_session_token() -> str:
    return secrets.token_hex(16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Currency(enum.StrEnum):
    EUR = "EUR"
    BSOL = "BSOL"


class PartyKind(enum.StrEnum):
    SOLISTE = "soliste"
    PRESTATAIRE = "prestataire"
    CCAS = "ccas"
    BANK = "bank"  # the banque SOL (Crédit Municipal): one party, seeded by the migration
    ASSOCIATION = "association"  # the APMC, which issues the Bou'Sols: one party, seeded


PARTY_PREFIX = {
    PartyKind.SOLISTE: "S", PartyKind.PRESTATAIRE: "P", PartyKind.CCAS: "C",
    PartyKind.BANK: "B", PartyKind.ASSOCIATION: "A",
}


class Role(enum.StrEnum):
    ADMIN = "admin"
    BANK = "bank"
    SOLISTE = "soliste"
    PRESTATAIRE = "prestataire"
    CCAS = "ccas"


ROLE_PARTY_KIND = {
    Role.SOLISTE: PartyKind.SOLISTE,
    Role.PRESTATAIRE: PartyKind.PRESTATAIRE,
    Role.CCAS: PartyKind.CCAS,
}


class Filiere(enum.StrEnum):
    ALIMENTATION = "alimentation"
    LOISIRS_CULTURE = "loisirs-culture"
    SERVICES_DE_PROXIMITE = "services-de-proximite"
    MOBILITE_DOUCE = "mobilite-douce"
    HABITAT_DURABLE = "habitat-durable"


FILIERE_LABELS = {
    Filiere.ALIMENTATION: N_("Alimentation"),
    Filiere.LOISIRS_CULTURE: N_("Loisirs et culture"),
    Filiere.SERVICES_DE_PROXIMITE: N_("Services de proximité"),
    Filiere.MOBILITE_DOUCE: N_("Mobilité douce"),
    Filiere.HABITAT_DURABLE: N_("Habitat durable"),
}


class SystemAccount(enum.StrEnum):
    """The bank's and the association's own accounts (see docs/ledger.md)."""

    ISSUANCE = "issuance"  # BSOL, negative by exactly the Bou'Sols in existence
    NOTES_CIRCULATION = "notes_circulation"  # BSOL held as paper notes by the public
    EUR_OUTSIDE = "eur_outside"  # EUR, the world outside: negative by the euros let in
    EUR_RESERVE = "eur_reserve"  # EUR, the fonds de garantie at the bank
    DESK_CASH = "desk_cash"  # EUR, cash and cheques taken at the desk, not yet banked
    BONUS_FUND = "bonus_fund"  # EUR, partners' subsidies that back the 5 % bonus
    FEES_INCOME = "fees_income"  # EUR, the association's income (fees, commissions)
    CASH_DISCREPANCY = "cash_discrepancy"  # EUR, differences found at the cash closing
    VOUCHERS_OUTSTANDING = "vouchers_outstanding"  # BSOL, aid vouchers granted, not spent


# The system accounts, their owners and labels are seeded by the first migration
# (migrations/versions/0001_ledger_core.py); docs/ledger.md lists them.

# The euros that back the Bou'Sols: the reserve and the desk's cash on its way there.
BACKING_ACCOUNTS = (SystemAccount.EUR_RESERVE, SystemAccount.DESK_CASH)


class Party(Base):
    __tablename__ = "parties"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('soliste', 'prestataire', 'ccas', 'bank', 'association')", name="kind"
        ),
        CheckConstraint(
            "filiere IS NULL OR filiere IN ('alimentation', 'loisirs-culture', "
            "'services-de-proximite', 'mobilite-douce', 'habitat-durable')",
            name="filiere",
        ),
        CheckConstraint("kind <> 'prestataire' OR filiere IS NOT NULL", name="prestataire_filiere"),
        # A trigger on SQLite (migration 0005), which cannot add a CHECK in place.
        CheckConstraint(
            "status IN ('active', 'draft', 'submitted', 'approved', 'refused', 'suspended')",
            name="status",
        ),
        UniqueConstraint("kind", "number"),
        CheckConstraint("birth_date IS NULL OR birth_date >= '1900-01-01'", name="birth_date"),
        Index("uq_parties_siret_prestataire", "siret", unique=True,
              sqlite_where=text("kind = 'prestataire' AND siret IS NOT NULL"),
              postgresql_where=text("kind = 'prestataire' AND siret IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    filiere: Mapped[str | None] = mapped_column(String(32))
    # Contact, as the desk records it (migration 0003); never shown publicly.
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    commune: Mapped[str | None] = mapped_column(String(100))
    charter_accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    membership_until: Mapped[dt.date | None] = mapped_column(Date)
    # Optional (migration 0013): with the name and phone, how the desk recognises a
    # member already registered. CHECK birth_date >= 1900-01-01 (ck_parties_birth_date).
    birth_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    # Where reconverted euros are paid (prestataires; checksum checked on entry).
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # Approval status for prestataires (bousol/ledger/merchants/approval.py); others: active.
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The application for approval (prestataires, migration 0005). The contact person
    # is personal data: never shown publicly; the directory shows the business fields.
    legal_form: Mapped[str | None] = mapped_column(String(32))
    siret: Mapped[str | None] = mapped_column(String(14))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    opening_hours: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="party")


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("currency IN ('EUR', 'BSOL')", name="currency"),
        CheckConstraint("balance >= 0 OR allow_negative", name="balance_not_negative"),
        # A party's account, a system account (owned by the bank or the association),
        # or the world outside (a system account with no owner).
        CheckConstraint("party_id IS NOT NULL OR system_code IS NOT NULL", name="owned"),
        UniqueConstraint("party_id", "currency", "purpose"),
        # Target of the postings' composite foreign key (account, currency).
        UniqueConstraint("id", "currency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    system_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    currency: Mapped[str] = mapped_column(String(4))
    purpose: Mapped[str] = mapped_column(String(32), default="main")
    label: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    party: Mapped[Party | None] = relationship(back_populates="accounts")


class EntryKind(Base):
    """The kinds of entry the ledger knows; a new kind is a row added by a migration
    (a foreign key, rather than a CHECK list that SQLite could only change by
    rebuilding the append-only journal)."""

    __tablename__ = "entry_kinds"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)


class Entry(Base):
    """One business event: immutable; a correction is a new entry that reverses it."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(ForeignKey("entry_kinds.name"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    memo: Mapped[str | None] = mapped_column(String(500))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"), unique=True)
    # Operation details worth keeping beside the postings (tender, rate, fee rate…), JSON.
    details: Mapped[str | None] = mapped_column(Text)

    postings: Mapped[list[Posting]] = relationship(
        back_populates="entry", order_by="Posting.id"
    )


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint("currency IN ('EUR', 'BSOL')", name="currency"),
        ForeignKeyConstraint(
            ["account_id", "currency"],
            ["accounts.id", "accounts.currency"],
            name="fk_postings_account_currency",
        ),
        Index(None, "account_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(4))
    amount: Mapped[int] = mapped_column(BigInteger)  # signed cents: + into the account

    entry: Mapped[Entry] = relationship(back_populates="postings")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'bank', 'soliste', 'prestataire', 'ccas')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # In every session cookie (get_id); rotating it ends all the user's sessions.
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    # The desk a clerk works at: where the notes they hand out come from.
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("desks.id"))
    # An optional 4-to-6-digit PIN to confirm payments on a phone (hashed like passwords).
    pin_hash: Mapped[str | None] = mapped_column(String(255))

    party: Mapped[Party | None] = relationship()

    # The interface Flask-Login expects, written out so the ledger needs no Flask.
    @property
    def is_active(self) -> bool:
        return self.active

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class LoginAttempt(Base):
    """One password or PIN check: repeated failures slow down (bousol/ledger/access/logins.py).

    A row is written (failed) *before* the check, then marked succeeded: a check that
    dies halfway counts as a failure (migration 0011). ``kind``: a log-in, a PIN typed
    to pay, the password typed again by a logged-in user, or a username /agrement said
    was unavailable (``signup``); each counts apart."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
        CheckConstraint("kind IN ('login', 'pin', 'confirm', 'signup')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default="login", server_default="login")


class PasswordReset(Base):
    """A forgotten-password link (bousol/ledger/access/logins.py, migration 0011): only the
    SHA-256 of its token is kept; it expires and is used once."""

    __tablename__ = "password_resets"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index(None, "user_id", "used_at"),
        Index(None, "requested_from", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    requested_from: Mapped[str] = mapped_column(String(64))  # the client's address


class SettingChange(Base):
    """Dated configuration: each change of a setting (phase, fee…) is a new row.

    The current value of a key is its latest row; the rows are its history.
    """

    __tablename__ = "setting_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    value: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    changed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    # The collective's decision that made this change, when a vote did (migration 0009).
    motion_id: Mapped[int | None] = mapped_column(ForeignKey("motions.id"))


class IdempotencyKey(Base):
    """The first outcome of a request sent with an idempotency key, kept for replays."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        CheckConstraint("outcome IN ('ok', 'error')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))
    result: Mapped[str] = mapped_column(Text)  # JSON of the result, or of the error
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Counter(Base):
    """Gap-free counters (party numbers), incremented under the row's write lock."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)



# ------------------------------------------------------------------ the desk (issue 3)


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


class FirstPasswordCode(Base):
    """The one-time code on a new soliste's registration sheet, to choose their first
    password (bousol/ledger/access/first_login.py): only its SHA-256; expiring, single use,
    dead after a few wrong tries; at most one live code per user."""

    __tablename__ = "first_password_codes"
    __table_args__ = (
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        CheckConstraint("failed_attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("used_at IS NULL OR revoked_at IS NULL", name="used_or_revoked"),
        Index("uq_first_password_codes_one_live", "user_id", unique=True,
              sqlite_where=text("used_at IS NULL AND revoked_at IS NULL"),
              postgresql_where=text("used_at IS NULL AND revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


# ------------------------------------------------------------------ prestataires (issue 4)

PARTY_STATUSES = ("active", "draft", "submitted", "approved", "refused", "suspended")


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


# ------------------------------------------------------------------ CCAS social aid (issue 5)

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


# Each scope at most once, known names only (bousol/ledger/access/api_tokens.py SCOPES), one
# space apart: removing every " name " from " scopes " must leave a single space.
API_TOKEN_SCOPE_NAMES = ("read", "pay", "till", "desk", "vouchers", "tokens")
API_TOKEN_SCOPES_CHECK = "".join(
    ["REPLACE(" * len(API_TOKEN_SCOPE_NAMES), "' ' || scopes || ' '",
     *(f", ' {name} ', ' ')" for name in API_TOKEN_SCOPE_NAMES), " = ' '"])


class ApiToken(Base):
    """A bearer token of the JSON API (bousol/ledger/access/api_tokens.py): only its SHA-256 is
    kept; it expires, and its owner or an admin can revoke it."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "user_id", "revoked_at", "expires_at"),
                      Index(None, "created_from", "created_at"),
                      CheckConstraint(API_TOKEN_SCOPES_CHECK, name="scopes_known"),
                      CheckConstraint("expires_at > created_at", name="expires_after_created"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_from: Mapped[str] = mapped_column(String(64))  # the client's address
    # What it may be used for (migration 0010): names of api_tokens.SCOPES, space-separated.
    scopes: Mapped[str] = mapped_column(String(100))


# --------------------------------------------- the association (issue 7, migration 0009)


class College(enum.StrEnum):
    """The association's three colleges; every member belongs to one."""

    SOLISTES = "solistes"
    PRESTATAIRES = "prestataires"
    ACTEURS_LOCAUX = "acteurs_locaux"


COLLEGE_LABELS = {
    College.SOLISTES: N_("Solistes"),
    College.PRESTATAIRES: N_("Prestataires"),
    College.ACTEURS_LOCAUX: N_("Acteurs locaux"),
}

COLLEGE_CHECK = "college IN ('solistes', 'prestataires', 'acteurs_locaux')"


class PartnerCategory(enum.StrEnum):
    COLLECTIVITE = "collectivite"
    CREDIT_MUNICIPAL = "credit_municipal"
    RESEAU_ESS = "reseau_ess"
    AUTRE = "autre"


PARTNER_CATEGORY_LABELS = {
    PartnerCategory.COLLECTIVITE: N_("Collectivité"),
    PartnerCategory.CREDIT_MUNICIPAL: N_("Crédit Municipal"),
    PartnerCategory.RESEAU_ESS: N_("Réseau de l'ESS"),
    PartnerCategory.AUTRE: N_("Autre acteur local"),
}


class Partner(Base):
    """A local partner, member of the acteurs-locaux college without an account:
    a collectivity, the Crédit Municipal, an ESS network… (no login, no Bou'Sols)."""

    __tablename__ = "partners"
    __table_args__ = (
        CheckConstraint(
            "category IN ('collectivite', 'credit_municipal', 'reseau_ess', 'autre')",
            name="category",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # L-000001
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(300))
    commune: Mapped[str | None] = mapped_column(String(100))
    membership_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class MailMessage(Base):
    """Every e-mail the application sends (membership reminders…), kept: the page of
    sent mail in development, and proof of what was sent in production. A reminder
    goes once per member and month (the unique key)."""

    __tablename__ = "mail_messages"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        UniqueConstraint("kind", "recipient_key", "period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # membership_reminder
    recipient_key: Mapped[str] = mapped_column(String(32))  # party:12, partner:3
    period: Mapped[str] = mapped_column(String(16))  # 2026-11 for a monthly reminder
    to_address: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    transport: Mapped[str | None] = mapped_column(String(16))  # smtp, outbox
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CollectiveMember(Base):
    """A seat in the management collective (collectif de gestion): a user who votes,
    for one college. ``until`` set: the seat has ended (history stays)."""

    __tablename__ = "collective_members"
    __table_args__ = (
        CheckConstraint(COLLEGE_CHECK, name="college"),
        Index("uq_collective_members_user_current", "user_id", unique=True,
              sqlite_where=text("until IS NULL"), postgresql_where=text("until IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    college: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    added_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Motion(Base):
    """A decision put to the collective's vote, with its closing date. Its effect
    (a setting's new value, a prestataire's approval) applies only once adopted."""

    __tablename__ = "motions"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'adopted', 'rejected', 'withdrawn')", name="status"),
        CheckConstraint("effect IN ('none', 'setting', 'approval')", name="effect"),
        CheckConstraint(
            "(effect = 'setting' AND setting_key IS NOT NULL AND setting_value IS NOT NULL) "
            "OR (effect = 'approval' AND prestataire_party_id IS NOT NULL) "
            "OR (effect = 'none')",
            name="effect_target",
        ),
        CheckConstraint("closes_at > opens_at", name="period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    effect: Mapped[str] = mapped_column(String(16), default="none")
    setting_key: Mapped[str | None] = mapped_column(String(64))
    setting_value: Mapped[str | None] = mapped_column(String(200))
    prestataire_party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"))
    opens_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closes_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    result: Mapped[str | None] = mapped_column(Text)  # JSON: the totals at the close
    effect_note: Mapped[str | None] = mapped_column(String(500))  # what the effect did


class Vote(Base):
    """A collective member's vote on a motion: one row per person and motion; changed
    in place until the close (the audit trail keeps every change)."""

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint("choice IN ('for', 'against', 'abstain')", name="choice"),
        CheckConstraint(COLLEGE_CHECK, name="college"),
        UniqueConstraint("motion_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    college: Mapped[str] = mapped_column(String(16))  # the voter's college when voting
    choice: Mapped[str] = mapped_column(String(8))
    cast_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class FecMapping(Base):
    """The treasurer's mapping of a ledger account group to the association's chart of
    accounts (PCG), for the FEC export; groups without a row use the defaults in
    bousol/ledger/association/fec.py."""

    __tablename__ = "fec_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_key: Mapped[str] = mapped_column(String(64), unique=True)
    account_number: Mapped[str] = mapped_column(String(20))
    account_label: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AuditRecord(Base):
    """One audited action: who, when, what, from where. Append-only (triggers), and
    chained: ``hash`` = SHA-256 of the record's fields and ``prev_hash``, so an edit or
    a deletion breaks the chain (bousol/ledger/kernel/audit.py, ``flask bousol verify``)."""

    __tablename__ = "audit_records"
    __table_args__ = (Index(None, "at"), Index(None, "username", "at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # 1, 2, 3… without gaps
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int | None] = mapped_column(Integer)  # no FK: the trail outlives rows
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))  # client address, "cli", "system"
    action: Mapped[str] = mapped_column(String(120))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON: what changed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's head: one row (id 1), the last record's seq and hash, locked by the
    writer that appends (serialises appends; a deleted tail shows as a mismatch)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
