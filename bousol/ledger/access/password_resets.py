"""Forgotten passwords: a one-time link sent by e-mail (no Flask here).

Rules (docs/security.md):
- Solistes and prestataires only (the bank, the association and the CCAS ask an
  admin): they give the e-mail address their party holds (``parties.email``).
- The answer is the same whether the address is known or not (the web layer shows one
  sentence); nothing about other accounts leaks.
- The link carries a random token (256 bits); only its SHA-256 is stored. It expires
  after :data:`TTL`, works once (a conditional update: of two clicks, one wins), and
  dies when the password changes by any other way.
- At most :data:`MAX_PER_USER` links per user and :data:`MAX_PER_ADDRESS` per client
  address per hour: a flood of requests sends no flood of e-mail (silently: the
  answer stays the same).
- Using the link sets the new password and ends every session, API token and other
  link of the user; the address it was used from becomes one the user is known at
  (bousol/ledger/access/logins.py), so an attacker hammering the account elsewhere does not
  keep the real user out.
- The message kept in ``mail_messages`` (shown on the admin's mail page) has the
  link removed when the mail really leaves (smtp): nobody reading the page can use
  someone's link. With the ``outbox`` transport (development, tests) nothing leaves,
  so the kept copy is the only one and keeps the link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from werkzeug.security import generate_password_hash

from bousol.ledger.access import logins, parties
from bousol.ledger.access.models import PasswordReset
from bousol.ledger.books.models import Party, User
from bousol.ledger.kernel import mail
from bousol.ledger.kernel.actors import Role
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.models import MailMessage, utcnow
from bousol.ledger.kernel.uow import UnitOfWork

TTL = dt.timedelta(minutes=30)
RATE_WINDOW = dt.timedelta(hours=1)
MAX_PER_USER = 3
MAX_PER_ADDRESS = 10
ROLES = (Role.SOLISTE.value, Role.PRESTATAIRE.value)
KIND = "password_reset"
REDACTED = "[lien personnel retiré de la copie conservée]"

resets_t, users_t, parties_t = PasswordReset.__table__, User.__table__, Party.__table__
mails_t = MailMessage.__table__


class InvalidResetLink(DomainError):
    code = "invalid_reset_link"
    http_status = 410
    default_message = ("Ce lien n'est plus valable (déjà utilisé, expiré ou remplacé) : "
                       "demandez-en un nouveau.")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Sent:
    """What a request did (for tests and logs; never shown to the one who asked)."""

    sent: int
    skipped: int


def request_link(new_uow: Callable[[], UnitOfWork], *, email: object, address: str,
                 mailer: mail.Mailer, link_for: Callable[[str], str]) -> Sent:
    """Send a link to every soliste or prestataire user whose party holds ``email``.

    ``link_for(token)`` makes the absolute URL of the page that uses a token.
    """
    email = email.strip().lower() if isinstance(email, str) else ""
    address = (address or "unknown")[:64]
    if not email or "@" not in email or len(email) > 200 or mailer.problem() is not None:
        return Sent(0, 0)
    now = utcnow()
    claimed: list[tuple[int, str, str, str]] = []
    skipped = 0
    uow = new_uow()
    with uow:
        conn = uow.conn
        since = now - RATE_WINDOW
        from_address = conn.execute(select(func.count()).select_from(resets_t).where(
            resets_t.c.requested_from == address, resets_t.c.created_at > since)).scalar()
        users = conn.execute(
            select(users_t.c.id, parties_t.c.name, parties_t.c.email)
            .join(parties_t, parties_t.c.id == users_t.c.party_id)
            .where(func.lower(func.trim(parties_t.c.email)) == email,
                   users_t.c.role.in_(ROLES), users_t.c.active.is_(True))
            .order_by(users_t.c.id).limit(5)).all()
        for user in users:
            recent = conn.execute(select(func.count()).select_from(resets_t).where(
                resets_t.c.user_id == user.id, resets_t.c.created_at > since)).scalar()
            if recent >= MAX_PER_USER or from_address >= MAX_PER_ADDRESS:
                skipped += 1
                continue
            token = secrets.token_urlsafe(32)
            reset_id = conn.execute(insert(resets_t).values(
                user_id=user.id, token_hash=hash_token(token), created_at=now,
                expires_at=now + TTL, requested_from=address,
            ).returning(resets_t.c.id)).scalar_one()
            from_address += 1
            subject = "Bou'Sol : choisir un nouveau mot de passe"
            body = _body(link_for(token))
            kept = body if mailer.transport == "outbox" else _body(REDACTED)
            mail_id = conn.execute(insert(mails_t).values(
                kind=KIND, recipient_key=f"user:{user.id}", period=f"r{reset_id}",
                to_address=user.email.strip(), subject=subject, body=kept,
                status="pending", transport=mailer.transport, created_at=now,
            ).returning(mails_t.c.id)).scalar_one()
            claimed.append((mail_id, mail.display_address(user.name, user.email.strip()),
                            subject, body))
        uow.commit()
    for mail_id, to, subject, body in claimed:
        error = None
        try:
            mailer.send(mail.build(mailer, to=to, subject=subject, body=body))
        except (mail.DeliveryFailed, ValueError) as failure:
            error = str(failure)[:500] or "échec de l'envoi"
        uow = new_uow()
        with uow:
            uow.conn.execute(update(mails_t).where(mails_t.c.id == mail_id).values(
                status="failed" if error else "sent", error=error,
                sent_at=None if error else utcnow()))
            uow.commit()
    return Sent(len(claimed), skipped)


def _body(link: str) -> str:
    minutes = int(TTL.total_seconds() // 60)
    return (
        "Bonjour,\n\n"
        "Quelqu'un (vous, sans doute) a demandé à choisir un nouveau mot de passe pour "
        "votre compte Bou'Sol. Ouvrez ce lien pour le faire :\n\n"
        f"{link}\n\n"
        f"Le lien sert une seule fois et expire dans {minutes} minutes. Si vous n'avez "
        "rien demandé, ignorez ce message : votre mot de passe ne change pas.\n\n"
        "— L'association pour la Promotion de la Monnaie Citoyenne du Boulonnais\n")


def is_valid(uow: UnitOfWork, token: object) -> bool:
    """Whether the link can still be used (the page shows its form or says it is not)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return False
    with uow:
        return uow.conn.execute(select(resets_t.c.id).where(
            resets_t.c.token_hash == hash_token(token), resets_t.c.used_at.is_(None),
            resets_t.c.expires_at > utcnow())).first() is not None


@dataclass(frozen=True)
class Reset:
    user_id: int
    session_token: str


def use_link(new_uow: Callable[[], UnitOfWork], *, token: object, password: object,
             address: str) -> Reset:
    """Set the new password with the link, once; :class:`InvalidResetLink` when it is
    unknown, expired or used. Nothing is written when the password is refused."""
    password = parties.check_new_password(password)
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise InvalidResetLink()
    password_hash = generate_password_hash(password, method=parties.PASSWORD_METHOD)
    now = utcnow()
    uow = new_uow()
    with uow:
        conn = uow.conn
        # The claim is the condition: of two uses at once, one updates the row.
        user_id = conn.execute(
            update(resets_t).where(resets_t.c.token_hash == hash_token(token),
                                   resets_t.c.used_at.is_(None),
                                   resets_t.c.expires_at > now)
            .values(used_at=now).returning(resets_t.c.user_id)).scalar_one_or_none()
        if user_id is None:
            raise InvalidResetLink()
        user = conn.execute(select(users_t.c.username).where(
            users_t.c.id == user_id, users_t.c.active.is_(True),
            users_t.c.role.in_(ROLES))).first()
        if user is None:
            raise InvalidResetLink()
        session_token = parties.store_password(conn, user_id, password_hash, now)
        conn.execute(insert(logins.attempts_t).values(
            username=user.username, address=(address or "unknown")[:64], succeeded=True,
            at=now, kind="login"))
        uow.commit()
    return Reset(user_id, session_token)
