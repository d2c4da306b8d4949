"""A soliste registered at the desk chooses their first password with a one-time code.

Rules (docs/members.md, "The member's own log-in"):

- The registration creates the soliste's user (bousol/ledger/access/parties.py,
  ``create_member_login``) and one code, printed on the registration sheet with the
  username and the address of the page where it is used (``/premier-mot-de-passe``).
- The code: 12 symbols from a 30-letter alphabet without look-alikes (0/O, 1/I/L, U),
  about 59 bits, shown as ``ABCD-EFGH-JKMN``; typed with or without dashes and spaces, in
  any case. Only its SHA-256 is stored (``first_password_codes.code_hash``).
- It is valid ``CODE_TTL`` (30 days), used once, and dies after ``MAX_FAILURES`` (5)
  wrong codes typed for its username (each wrong try is committed before the refusal).
  Every refusal has the same message, whatever was wrong.
- A new code (a lost sheet, an expired code) is issued at the desk only while the
  soliste has not chosen a password yet: once they have, nobody at the desk can take
  over the account (no money leaves on one person's word). Issuing revokes the code
  that was live; at most one live code per user (a partial unique index backs it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from werkzeug.security import generate_password_hash

from bousol.ledger.access import parties
from bousol.ledger.access.models import FirstPasswordCode, PasswordReset
from bousol.ledger.books.models import Party, PartyKind, User
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import DomainError, UnknownParty
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.uow import UnitOfWork

codes_t, users_t, parties_t = FirstPasswordCode.__table__, User.__table__, Party.__table__

ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud, typed back
CODE_LENGTH = 12
CODE_TTL = dt.timedelta(days=30)
MAX_FAILURES = 5


class InvalidFirstCode(DomainError):
    code = "invalid_first_code"
    http_status = 422
    default_message = ("Identifiant ou code incorrect, code déjà utilisé ou expiré. "
                       "Après cinq erreurs le code ne vaut plus : demandez-en un nouveau "
                       "au comptoir du Crédit Municipal.")


class PasswordAlreadyChosen(DomainError):
    code = "password_already_chosen"
    http_status = 409
    default_message = ("Cet adhérent a déjà choisi son mot de passe : aucun code ne peut "
                       "plus lui être remis au comptoir.")


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(text: object) -> str:
    if not isinstance(text, str) or len(text) > 64:
        return ""
    return "".join(c for c in text.upper() if c not in " -\u00a0\u202f\t")


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def issue(conn: Connection, *, user_id: int, actor_user_id: int | None,
          now: dt.datetime | None = None) -> str:
    """A new code for this user (the live one, if any, is revoked); returns it in clear,
    once: it is stored hashed."""
    now = now or utcnow()
    conn.execute(update(codes_t).where(codes_t.c.user_id == user_id,
                                       codes_t.c.used_at.is_(None),
                                       codes_t.c.revoked_at.is_(None))
                 .values(revoked_at=now))
    code = new_code()
    conn.execute(insert(codes_t).values(
        user_id=user_id, code_hash=code_hash(code), created_at=now,
        expires_at=now + CODE_TTL, failed_attempts=0, created_by_user_id=actor_user_id))
    return code


@dataclass(frozen=True)
class IssuedCode:
    username: str
    code: str
    expires_on: dt.date


def reissue(uow: UnitOfWork, actor: Actor, party_code: str) -> IssuedCode:
    """A new code for a soliste who has not chosen a password yet (the desk)."""
    actor.require(Role.BANK, Role.ADMIN)
    with uow:
        conn = uow.conn
        user = conn.execute(
            select(users_t.c.id, users_t.c.username)
            .select_from(users_t.join(parties_t, parties_t.c.id == users_t.c.party_id))
            .where(parties_t.c.code == party_code, parties_t.c.kind == PartyKind.SOLISTE)
            .order_by(users_t.c.id).limit(1)
            .with_for_update(of=users_t)  # two clerks at once: one code stays live
        ).first()
        if user is None:
            raise UnknownParty()
        if not awaiting_first_password(conn, user.id):
            raise PasswordAlreadyChosen()
        now = utcnow()
        code = issue(conn, user_id=user.id, actor_user_id=actor.user_id, now=now)
        uow.commit()
    return IssuedCode(user.username, code, (now + CODE_TTL).date())


def awaiting_first_password(conn: Connection, user_id: int) -> bool:
    """Made at the desk (it has codes), none was used yet, and no password was ever
    set another way (a forgotten-password link used after the codes were revoked)."""
    rows = conn.execute(select(codes_t.c.used_at).where(codes_t.c.user_id == user_id)).all()
    if not rows or any(row.used_at is not None for row in rows):
        return False
    resets_t = PasswordReset.__table__
    return conn.execute(select(resets_t.c.id).where(
        resets_t.c.user_id == user_id, resets_t.c.used_at.is_not(None)).limit(1)).first() is None


def set_first_password(uow: UnitOfWork, *, username: object, code: object,
                       password: object) -> int:
    """Check the code, then store the chosen password; the code is used. Returns the
    user's id. A wrong code counts against the live code of that username."""
    password = parties.check_new_password(password)
    name = username.strip().lower() if isinstance(username, str) else ""
    digest = code_hash(code if isinstance(code, str) else "")
    now = utcnow()
    with uow:
        conn = uow.conn
        live = conn.execute(
            select(codes_t.c.id, codes_t.c.code_hash, codes_t.c.expires_at,
                   codes_t.c.failed_attempts, codes_t.c.user_id)
            .select_from(codes_t.join(users_t, users_t.c.id == codes_t.c.user_id))
            .where(users_t.c.username == name, users_t.c.active.is_(True),
                   codes_t.c.used_at.is_(None), codes_t.c.revoked_at.is_(None))
            .with_for_update(of=codes_t)
        ).first()
        if live is None or as_utc(live.expires_at) <= now:
            raise InvalidFirstCode()
        if not hmac.compare_digest(live.code_hash, digest) or not normalise_code(code):
            # Counted atomically, and committed before the refusal: the fifth kills it.
            conn.execute(update(codes_t).where(codes_t.c.id == live.id).values(
                failed_attempts=codes_t.c.failed_attempts + 1))
            conn.execute(update(codes_t).where(
                codes_t.c.id == live.id, codes_t.c.failed_attempts >= MAX_FAILURES,
                codes_t.c.revoked_at.is_(None)).values(revoked_at=now))
            uow.commit()
            raise InvalidFirstCode()
        used = conn.execute(update(codes_t).where(
            codes_t.c.id == live.id, codes_t.c.used_at.is_(None),
            codes_t.c.revoked_at.is_(None)).values(used_at=now))
        if used.rowcount != 1:  # a concurrent use won
            raise InvalidFirstCode()
        parties.store_password(conn, live.user_id,
                               generate_password_hash(password,
                                                      method=parties.PASSWORD_METHOD), now)
        uow.commit()
    return live.user_id
