"""The books: parties, their users and their accounts, the journal (entries and their postings), the
kinds of entry, and the system accounts of the double-entry model.

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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bousol.ledger.kernel.actors import Role
from bousol.ledger.kernel.models import Base, new_session_token, utcnow
from bousol.ledger.kernel.text import N_, sort_name

# The accent-folded name (kernel.text.sort_name) the members' lists are ordered by,
# compared by code point: collation "C" on PostgreSQL (SQLite's BINARY already is).
SORT_NAME_TYPE = Text().with_variant(Text(collation="C"), "postgresql")


def sort_name_default(context) -> str:
    """Every SQLAlchemy insert that names a party (or partner) without its sort name gets
    it from the name; an update of the name sets it itself (docs/members.md)."""
    return sort_name(context.get_current_parameters().get("name"))


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
        # The members' list (migration 0019): by kind then name, a page a range of it,
        # its filters read in the index alone (status: a range of membership_until);
        # a rare status from the second one. The CHECK is two triggers on SQLite.
        CheckConstraint("sort_name IS NOT NULL", name="sort_name"),
        Index("ix_parties_kind_sort_name", "kind", "sort_name", "code", "membership_until",
              "status"),
        Index("ix_parties_kind_membership", "kind", "membership_until", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    number: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # sort_name(name), kept by every writer of the name (a CHECK: never NULL).
    sort_name: Mapped[str] = mapped_column(SORT_NAME_TYPE, nullable=True,
                                           default=sort_name_default)
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



PARTY_STATUSES = ("active", "draft", "submitted", "approved", "refused", "suspended")


# Who acts for a party: a user logs in with one role (bousol.ledger.kernel.actors).
ROLE_PARTY_KIND = {
    Role.SOLISTE: PartyKind.SOLISTE,
    Role.PRESTATAIRE: PartyKind.PRESTATAIRE,
    Role.CCAS: PartyKind.CCAS,
}


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


class AccountDay(Base):
    """What one account saw on one Paris day, per kind of entry: the figures a page
    shows (today's takings, the reserve's history) and the entry-id range that lets a
    statement filtered by dates start its keyset scan at the right place.

    Maintained by the posting engine in the entry's own transaction
    (:mod:`bousol.ledger.books.account_days`); ``verify`` proves it equals the journal.
    An entry counts once per account it moved: "in" when it put money in, "out" when it
    took money out (amounts in cents, both positive here)."""

    __tablename__ = "account_days"
    __table_args__ = (
        CheckConstraint("in_count >= 0 AND out_count >= 0 AND in_count + out_count > 0",
                        name="counts"),
        CheckConstraint("in_cents >= 0 AND out_cents >= 0", name="cents"),
        CheckConstraint("(in_count = 0) = (in_cents = 0) AND (out_count = 0) = (out_cents = 0)",
                        name="count_matches_cents"),
        CheckConstraint("first_entry_id <= last_entry_id", name="entry_range"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(ForeignKey("entry_kinds.name"), primary_key=True)
    in_count: Mapped[int] = mapped_column(Integer, default=0)
    in_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    out_count: Mapped[int] = mapped_column(Integer, default=0)
    out_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    first_entry_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_entry_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
