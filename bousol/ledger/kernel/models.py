"""The kernel's tables: the declarative base and its naming convention, settings and their
history, idempotency keys, counters, the outgoing mail, and the audit trail.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bousol.ledger.kernel import clock

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
    if TYPE_CHECKING:
        # SQLAlchemy types ``__table__`` as a FromClause (a mapping may be of a join or a
        # select); every model here maps one Table, and the rules use it as one (mypy).
        __table__: ClassVar[Table]


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


JOB_STATUSES = ("queued", "running", "done", "failed")


class Job(Base):
    """A background job (bousol/ledger/kernel/jobs.py, docs/fec.md): who asked, when, for
    what (``kind`` and ``params``, canonical JSON), its state (queued → running → done |
    failed, a stale running one back to queued), and what it left: a file under
    ``EXPORTS_DIR`` (its name only, never a path), its size and SHA-256, or the error.
    ``active_key`` is the job's kind and parameters while it is queued or running, NULL
    after: unique, so the same request made twice meanwhile queues one job."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        CheckConstraint("(status IN ('queued', 'running')) = (active_key IS NOT NULL)",
                        name="active_key"),
        CheckConstraint("status <> 'done' OR (output_name IS NOT NULL AND sha256 IS NOT NULL "
                        "AND size_bytes IS NOT NULL)", name="done_output"),
        CheckConstraint("status <> 'failed' OR error IS NOT NULL", name="failed_error"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index(None, "status", "id"),
        Index(None, "kind", "requested_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # fec
    params: Mapped[str] = mapped_column(Text)  # canonical JSON
    active_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    role: Mapped[str] = mapped_column(String(16))  # the asker's role: who may download
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(100))  # host:pid of the last claim
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    output_name: Mapped[str | None] = mapped_column(String(200))
    download_name: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
