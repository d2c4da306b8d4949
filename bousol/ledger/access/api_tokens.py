"""Bearer tokens of the JSON API v1 (no Flask here; docs/api.md).

- A token is 32 random bytes (``secrets.token_urlsafe``), shown once to the client
  that asked for it; the database keeps only its SHA-256 (hex), so a copy of the
  database lets nobody call the API.
- It is issued after the same password check and the same throttling as the login
  page (:mod:`bousol.ledger.access.logins`: per username and per address, failures only),
  plus a cap on the tokens issued per user and per address in an hour. A refused
  request raises :class:`TooManyAttempts` with ``details["retry_after"]`` seconds.
- It expires ``ttl`` after it was issued (``DEFAULT_TTL``, 30 days; the web layer reads
  the ``API_TOKEN_TTL_DAYS`` config) and can be revoked by its owner or by an admin.
- A token of a user who was deactivated stops working at once.
- It carries **scopes** chosen when it is issued (:data:`SCOPES`), among those its
  owner's role may use (:data:`ROLE_SCOPES`); without a choice it gets the role's full
  set, which is what every token issued before scopes existed got (migration 0010).
  A call outside the token's scopes is refused by the web layer (403
  ``insufficient_scope``). Its lifetime is chosen too, within the maximum ``ttl``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, exc, insert, select, update

from bousol.ledger.access import logins, parties
from bousol.ledger.access.models import ApiToken
from bousol.ledger.books.models import Party, User
from bousol.ledger.kernel import inputs
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.driver_sql import DriverStatement
from bousol.ledger.kernel.errors import DomainError, InvalidInput, NotFound, TooManyAttempts
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.text import N_
from bousol.ledger.kernel.uow import UnitOfWork

tokens_t, users_t, parties_t = ApiToken.__table__, User.__table__, Party.__table__

DEFAULT_TTL = dt.timedelta(days=30)
LABEL_MAX = 100
# Successful issues: a till or a script needs a token a day, not hundreds an hour
# (a bound on the table, not a brake on honest clients).
ISSUE_WINDOW = dt.timedelta(hours=1)
MAX_ISSUED_PER_USER = 100
MAX_ISSUED_PER_ADDRESS = 1000
# ``last_used_at`` is written at most this often (not one write per call).
TOUCH_EVERY = dt.timedelta(minutes=5)
# What a token may be used for. One scope per kind of power, so that a till, a
# dashboard or a script gets only what it needs: a leaked read-only token moves no money.
SCOPES: dict[str, str] = {
    "read": N_("Consulter (soldes, écritures, bons, demandes)"),
    "pay": N_("Payer (paiements, demandes de paiement reçues)"),
    "till": N_("Encaisser (demandes de paiement, bons d'aide)"),
    "desk": N_("Comptoir (change, reconversion)"),
    "vouchers": N_("Attribuer des bons d'aide"),
    "tokens": N_("Révoquer ses autres jetons"),
}
# The scopes a role may hold: the calls that role can make at all (the web layer still
# checks the role of every call). A token issued without a choice gets all of them.
ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.SOLISTE: ("read", "pay", "tokens"),
    Role.PRESTATAIRE: ("read", "pay", "till", "tokens"),
    Role.BANK: ("read", "desk", "tokens"),
    Role.CCAS: ("read", "vouchers", "tokens"),
    Role.ADMIN: ("read", "tokens"),
}
MIN_TTL = dt.timedelta(days=1)
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class InvalidScope(DomainError):
    code = "invalid_scope"
    http_status = 422
    default_message = "Droits du jeton invalides pour ce rôle."


def scopes_text(scopes) -> str:
    """The stored form: the names in :data:`SCOPES` order, one space apart (the
    database's CHECK ``scopes_known`` accepts exactly that)."""
    chosen = set(scopes)
    return " ".join(name for name in SCOPES if name in chosen)


def choose_scopes(role: Role | str, requested: object) -> tuple[str, ...]:
    """The scopes of a new token: ``requested`` (a list of names, each allowed to the
    role, at least one) or, when ``None``, the role's full set."""
    allowed = ROLE_SCOPES[Role(role)]
    if requested is None:
        return allowed
    if not isinstance(requested, list | tuple) or not requested \
            or not all(isinstance(name, str) for name in requested) \
            or len(set(requested)) != len(requested):
        raise InvalidScope("Droits du jeton : une liste non vide de noms distincts.")
    refused = [name for name in requested if name not in allowed]
    if refused:
        raise InvalidScope("Droits non permis à ce rôle : " + ", ".join(sorted(refused))
                           + " (permis : " + ", ".join(allowed) + ").")
    return tuple(name for name in SCOPES if name in requested)


def choose_ttl(days: object, maximum: dt.timedelta) -> dt.timedelta:
    """The lifetime of a new token: ``days`` (1 to the maximum) or, when ``None``, the
    maximum (what every token got before the lifetime could be chosen)."""
    if days is None:
        return maximum
    if isinstance(days, bool) or not isinstance(days, int) \
            or not MIN_TTL <= dt.timedelta(days=days) <= maximum:
        raise InvalidInput(f"Durée du jeton : de 1 à {maximum.days} jour(s).")
    return dt.timedelta(days=days)


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    http_status = 401
    default_message = "Identifiant ou mot de passe incorrect."


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # the only time it is seen
    expires_at: dt.datetime
    user_id: int
    scopes: tuple[str, ...] = ()


def _issued_wait(uow: UnitOfWork, user_id: int, address: str, now: dt.datetime) -> int:
    """Seconds to wait before this user or address may get another token (0: now)."""
    waits = []
    with uow:
        for column, value, limit in ((tokens_t.c.user_id, user_id, MAX_ISSUED_PER_USER),
                                     (tokens_t.c.created_from, address,
                                      MAX_ISSUED_PER_ADDRESS)):
            recent = uow.conn.execute(
                select(tokens_t.c.created_at)
                .where(column == value, tokens_t.c.created_at > now - ISSUE_WINDOW)
                .order_by(tokens_t.c.created_at.desc()).limit(limit)
            ).scalars().all()
            if len(recent) >= limit:
                oldest = as_utc(recent[-1])
                waits.append(int((oldest + ISSUE_WINDOW - now).total_seconds()) + 1)
    return max([0, *waits])


def too_many(wait: int) -> TooManyAttempts:
    minutes = max(1, -(-wait // 60))
    return TooManyAttempts(f"Trop de tentatives : réessayez dans {minutes} minute(s).",
                           retry_after=wait)


def issue(new_uow: Callable[..., UnitOfWork], *, username: object, password: object,
          address: str, label: object = None, ttl: dt.timedelta = DEFAULT_TTL,
          scopes: object = None, days: object = None) -> IssuedToken:
    """A new token for the user with this username and password.

    ``scopes``: a list of names of :data:`SCOPES` (``None``: the role's full set;
    :class:`InvalidScope`); ``days``: its lifetime, at most ``ttl`` (``None``: ``ttl``).

    ``new_uow(read_only=…)`` makes the units of work (the password is checked outside
    any transaction). Refusals: :class:`TooManyAttempts` (``retry_after``),
    :class:`InvalidCredentials`.
    """
    username = username if isinstance(username, str) else ""
    password = password if isinstance(password, str) else ""
    address = (address or "unknown")[:64]
    if label is not None and (not isinstance(label, str) or len(label) > LABEL_MAX):
        raise InvalidInput(f"Libellé du jeton : {LABEL_MAX} caractères au plus.")
    # Reserved before the hash is checked (docs/security.md): no race lets more through.
    user = logins.guarded(
        new_uow, username, address,
        lambda: parties.authenticate(new_uow(read_only=True), username, password))
    if user is None:
        raise InvalidCredentials()
    chosen = choose_scopes(user.role, scopes)
    ttl = choose_ttl(days, ttl)
    now = utcnow()
    wait = _issued_wait(new_uow(read_only=True), user.id, address, now)
    if wait:
        raise too_many(wait)
    token = secrets.token_urlsafe(32)
    expires_at = now + ttl
    uow = new_uow()
    with uow:
        token_id = uow.conn.execute(insert(tokens_t).values(
            user_id=user.id, token_hash=hash_token(token), label=label or None,
            created_at=now, expires_at=expires_at, created_from=address,
            scopes=scopes_text(chosen),
        ).returning(tokens_t.c.id)).scalar_one()
        uow.commit()
    return IssuedToken(token_id, token, expires_at, user.id, chosen)


@dataclass(frozen=True)
class TokenUser:
    """Who a valid token speaks for."""

    token_id: int
    user_id: int
    username: str
    role: str
    party_id: int | None
    party_code: str | None
    party_kind: str | None
    party_name: str | None
    last_used_at: dt.datetime | None
    scopes: frozenset[str] = frozenset()

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, role=Role(self.role), party_id=self.party_id,
                     party_code=self.party_code, username=self.username)


# Built once: every API call runs it (SQLAlchemy then reuses its compiled form).
_BY_HASH = (
    select(tokens_t.c.id, tokens_t.c.expires_at, tokens_t.c.revoked_at,
           tokens_t.c.last_used_at, tokens_t.c.scopes,
           users_t.c.id.label("user_id"), users_t.c.username,
           users_t.c.role, users_t.c.active, users_t.c.party_id,
           parties_t.c.code, parties_t.c.kind, parties_t.c.name)
    .join(users_t, users_t.c.id == tokens_t.c.user_id)
    .outerjoin(parties_t, parties_t.c.id == users_t.c.party_id)
    .where(tokens_t.c.token_hash == bindparam("token_hash"))
)
_ByHash = namedtuple("_ByHash", [c.name for c in _BY_HASH.selected_columns])  # type: ignore[misc]
_LOOKUP = DriverStatement(_BY_HASH)  # compiled once per dialect


def _token_row(conn: Connection, digest: str):
    """The token's row. PostgreSQL: straight through the driver's cursor, in the
    connection's transaction or in autocommit (psycopg hands back datetimes as they
    are; SQLite's are text, which SQLAlchemy's types read)."""
    params = {"token_hash": digest}
    if conn.dialect.name != "postgresql":
        return conn.execute(_BY_HASH, params).first()
    compiled = _LOOKUP.compiled(conn.dialect)
    try:
        with conn.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(compiled.sql, compiled.bind(params))
            values = cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as error:
        raise exc.DBAPIError.instance(compiled.sql, params, error,
                                      conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from error
    return None if values is None else _ByHash(*values)


def user_for_token(conn: Connection, token: object, now: dt.datetime | None = None
                   ) -> TokenUser | None:
    """The active user behind a token that is neither expired nor revoked, or None.

    One statement: ``conn`` may be a read-only unit of work's or a connection in
    autocommit (that one statement reads one consistent state by itself)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100 \
            or not set(token) <= _TOKEN_CHARS:
        return None
    now = now or utcnow()
    row = _token_row(conn, hash_token(token))
    if row is None or row.revoked_at is not None or not row.active \
            or as_utc(row.expires_at) <= now:
        return None
    return TokenUser(row.id, row.user_id, row.username, row.role, row.party_id, row.code,
                     row.kind, row.name,
                     as_utc(row.last_used_at) if row.last_used_at else None,
                     frozenset(row.scopes.split()))


def touch(uow: UnitOfWork, found: TokenUser, now: dt.datetime | None = None) -> None:
    """Note that the token was used (at most once every ``TOUCH_EVERY``)."""
    now = now or utcnow()
    if found.last_used_at is not None and now - found.last_used_at < TOUCH_EVERY:
        return
    with uow:
        uow.conn.execute(update(tokens_t).where(tokens_t.c.id == found.token_id)
                         .values(last_used_at=now))
        uow.commit()


@dataclass(frozen=True)
class TokenView:
    id: int
    label: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    created_from: str
    scopes: tuple[str, ...] = ()


def active_tokens(conn: Connection, user_id: int, now: dt.datetime | None = None
                  ) -> list[TokenView]:
    """The user's tokens that still work, newest first."""
    now = now or utcnow()
    rows = conn.execute(
        select(tokens_t).where(tokens_t.c.user_id == user_id,
                               tokens_t.c.revoked_at.is_(None),
                               tokens_t.c.expires_at > now)
        .order_by(tokens_t.c.id.desc())
    ).all()
    return [TokenView(r.id, r.label, as_utc(r.created_at), as_utc(r.expires_at),
                      as_utc(r.last_used_at) if r.last_used_at else None, r.created_from,
                      tuple(r.scopes.split()))
            for r in rows]


def user_id_by_username(conn: Connection, username: object) -> int | None:
    if not isinstance(username, str) or len(username) > parties.USERNAME_MAX:
        return None
    return conn.execute(select(users_t.c.id)
                        .where(users_t.c.username == username.strip().lower())).scalar()


def revoke(uow: UnitOfWork, actor: Actor, token_id: object) -> TokenView:
    """Revoke a token: its owner, or an admin (anyone else: ``not_found``). Revoking a
    token already revoked or expired is ``not_found`` too: it is no longer active."""
    token_id = inputs.database_id(token_id, NotFound("Jeton introuvable."))
    with uow:
        conn = uow.conn
        row = conn.execute(select(tokens_t).where(tokens_t.c.id == token_id)
                           .with_for_update()).first()
        if row is None or (row.user_id != actor.user_id and actor.role != Role.ADMIN) \
                or row.revoked_at is not None or as_utc(row.expires_at) <= utcnow():
            raise NotFound("Jeton introuvable.")
        conn.execute(update(tokens_t).where(tokens_t.c.id == token_id,
                                            tokens_t.c.revoked_at.is_(None))
                     .values(revoked_at=utcnow(), revoked_by_user_id=actor.user_id))
        view = TokenView(row.id, row.label, as_utc(row.created_at), as_utc(row.expires_at),
                         as_utc(row.last_used_at) if row.last_used_at else None,
                         row.created_from, tuple(row.scopes.split()))
        uow.commit()
    return view

