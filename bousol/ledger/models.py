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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bousol.ledger.text import N_

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        UniqueConstraint("kind", "number"),
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
    # Approval status for prestataires (issue 4 adds the state machine); others: active.
    status: Mapped[str] = mapped_column(String(16), default="active")
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
    """One login attempt: repeated failures slow down (bousol/ledger/logins.py)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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

