"""Who may act: users and their roles, log-in attempts, password resets, first-password
codes, API tokens.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from bousol.ledger.kernel.models import Base, utcnow


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
