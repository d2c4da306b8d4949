"""The association: its colleges, partners, the collective's members, motions and votes,
the FEC account mapping.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column

from bousol.ledger.books.models import SORT_NAME_TYPE, sort_name_default
from bousol.ledger.kernel.models import Base, utcnow
from bousol.ledger.kernel.text import N_


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
        CheckConstraint("sort_name IS NOT NULL", name="sort_name"),  # migration 0019
        Index("ix_partners_sort_name", "sort_name", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # L-000001
    name: Mapped[str] = mapped_column(String(200))
    sort_name: Mapped[str] = mapped_column(SORT_NAME_TYPE, nullable=True,
                                           default=sort_name_default)
    category: Mapped[str] = mapped_column(String(32))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(300))
    commune: Mapped[str | None] = mapped_column(String(100))
    membership_until: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


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


# ---------------------------------------------------------------- report figures
# Maintained in each entry's own transaction (bousol/ledger/association/report_figures.py,
# docs/reports.md "Maintained figures"); ``verify`` proves they equal the journal.

REPORT_PARTY_COUNTS = ("purchases_count", "b2b_count", "paper_count", "earmarked_count",
                       "refunds_count", "refunds_b2b_count", "aid_count", "spent_count")
REPORT_PARTY_CENTS = ("purchases_cents", "b2b_cents", "paper_cents", "earmarked_cents",
                      "refunds_cents", "refunds_b2b_cents", "aid_cents")


class ReportDayFlow(Base):
    """The net of the postings of one Paris day on one kind of account, per kind of
    entry and channel: ``code`` is the system account's code, or ``''`` for the members'
    Bou'Sol accounts (every BSOL account without a system code). The money supply at a
    month's end is the running sum of these. ``entries`` counts the entries that moved
    that code (a day's payments between members, net zero, leave no row)."""

    __tablename__ = "report_day_flows"
    __table_args__ = (
        CheckConstraint("entries > 0", name="entries_positive"),
        CheckConstraint("channel IN ('', 'cash', 'cheque', 'card', 'transfer', 'request')",
                        name="channel"),
    )

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    entries: Mapped[int] = mapped_column(Integer)
    cents: Mapped[int] = mapped_column(BigInteger)  # signed: the net into those accounts


class ReportMonthParty(Base):
    """What one party did in one Paris month, as the activity report counts it (payments
    not reversed; a reversed payment is taken off its own month). A prestataire: what it
    received (``purchases`` from solistes or the CCAS, ``b2b`` from prestataires, aid
    vouchers ``paper`` and ``earmarked``) and refunded (``refunds``, ``refunds_b2b``);
    the CCAS: aid paid to solistes (``aid``); a soliste: ``spent_count``, its payments at
    prestataires and earmarked vouchers spent. Filière and commune are read from the
    party when the report is made (the prestataire's as they stand today)."""

    __tablename__ = "report_month_parties"
    __table_args__ = (
        CheckConstraint("party_kind IN ('soliste', 'prestataire', 'ccas')", name="party_kind"),
        CheckConstraint(" AND ".join(f"{c} >= 0" for c in REPORT_PARTY_COUNTS),
                        name="counts_not_negative"),
        CheckConstraint(" AND ".join(f"{c} >= 0" for c in REPORT_PARTY_CENTS),
                        name="cents_not_negative"),
        Index(None, "party_id"),
        # The report reads the prestataires' and the CCAS's rows of its months; they are
        # a few in a hundred, scattered among the solistes' on disk. This partial index
        # holds every column the report sums (PostgreSQL's INCLUDE): an index-only scan,
        # never the table's pages (issue 18: 470 → 100 ms for a year at 10 M entries).
        Index("ix_report_month_parties_not_soliste", "month", "party_id",
              postgresql_include=[*REPORT_PARTY_COUNTS, *REPORT_PARTY_CENTS, "party_kind"],
              postgresql_where=text("party_kind <> 'soliste'"),
              sqlite_where=text("party_kind <> 'soliste'")),
    )

    # The party's kind first: the report reads the prestataires' and the CCAS's rows of
    # its months as two ranges of the key, never the (many more) solistes' rows.
    party_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)  # its first day
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id"), primary_key=True)
    purchases_count: Mapped[int] = mapped_column(Integer)
    purchases_cents: Mapped[int] = mapped_column(BigInteger)
    b2b_count: Mapped[int] = mapped_column(Integer)
    b2b_cents: Mapped[int] = mapped_column(BigInteger)
    paper_count: Mapped[int] = mapped_column(Integer)
    paper_cents: Mapped[int] = mapped_column(BigInteger)
    earmarked_count: Mapped[int] = mapped_column(Integer)
    earmarked_cents: Mapped[int] = mapped_column(BigInteger)
    refunds_count: Mapped[int] = mapped_column(Integer)
    refunds_cents: Mapped[int] = mapped_column(BigInteger)
    refunds_b2b_count: Mapped[int] = mapped_column(Integer)
    refunds_b2b_cents: Mapped[int] = mapped_column(BigInteger)
    aid_count: Mapped[int] = mapped_column(Integer)
    aid_cents: Mapped[int] = mapped_column(BigInteger)
    spent_count: Mapped[int] = mapped_column(Integer)


class ReportMonth(Base):
    """How many distinct solistes and prestataires were active in one Paris month (rows
    of ``report_month_parties`` with a payment made, or received), kept as the party
    rows cross zero."""

    __tablename__ = "report_months"
    __table_args__ = (
        CheckConstraint("active_solistes >= 0 AND active_prestataires >= 0",
                        name="counts_not_negative"),
    )

    month: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    active_solistes: Mapped[int] = mapped_column(Integer)
    active_prestataires: Mapped[int] = mapped_column(Integer)
