"""Confirming a payment with the password or a PIN (no Flask here).

A logged-in phone left on a café table must not be enough to spend: every payment made
on a screen is confirmed with the user's password or, if they chose one, a PIN of 4 to
8 digits. Failed confirmations are throttled apart from log-ins (bousol/ledger/access/logins.py,
docs/security.md): a PIN-shaped secret of a user who has a PIN is a ``pin`` attempt, 5
wrong ones per 15 minutes block paying *by PIN* for the rest of the window (the
password still confirms); a password is a ``confirm`` attempt, with its own 5 per 15
minutes. Neither ever locks the log-in. Each attempt is reserved before its hash is
checked, and the hash is checked outside any transaction (scrypt takes tens of
milliseconds).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from bousol.ledger.access import logins, parties
from bousol.ledger.books.models import User
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import InvalidInput, TooManyAttempts, WrongSecret
from bousol.ledger.kernel.uow import UnitOfWork

users_t = User.__table__
PIN_RE = re.compile(r"[0-9]{4,8}")
SECRET_MAX = 200


def _hashes(uow: UnitOfWork, user_id: int):
    with uow:
        return uow.conn.execute(
            select(users_t.c.username, users_t.c.password_hash, users_t.c.pin_hash)
            .where(users_t.c.id == user_id, users_t.c.active.is_(True))
        ).first()


def confirm(new_uow: Callable[[], UnitOfWork], *, user_id: int, secret: object,
            address: str) -> None:
    """Return if ``secret`` is the user's password or PIN; raise otherwise.

    ``new_uow`` makes a fresh unit of work per step (read, then record the attempt).
    """
    row = _hashes(new_uow(), user_id)
    if row is None:
        raise WrongSecret()
    secret = secret if isinstance(secret, str) and 0 < len(secret) <= SECRET_MAX else ""
    if row.pin_hash is not None and PIN_RE.fullmatch(secret) is not None:
        # A PIN (or an all-digit password: the same attempt checks both).
        try:
            ok = logins.guarded(
                new_uow, row.username, address, kind="pin",
                check=lambda: (check_password_hash(row.pin_hash, secret)
                               or check_password_hash(row.password_hash, secret)))
        except TooManyAttempts as error:
            raise TooManyAttempts(
                "Trop de codes PIN erronés : le paiement par code PIN est bloqué "
                f"{error.details['minutes']} minute(s). Confirmez avec votre mot de passe.",
                **error.details) from None
    else:
        ok = logins.guarded(
            new_uow, row.username, address, kind="confirm",
            check=lambda: bool(secret) and check_password_hash(row.password_hash, secret))
    if not ok:
        raise WrongSecret()


def set_pin(new_uow: Callable[[], UnitOfWork], actor: Actor, *, password: object,
            pin: object, address: str) -> None:
    """Choose (or change) the PIN, after the password; ``pin`` None or "" removes it."""
    if actor.user_id is None:
        raise InvalidInput("Seul un utilisateur connecté choisit un code PIN.")
    if pin not in (None, "") and (not isinstance(pin, str) or not PIN_RE.fullmatch(pin)):
        raise InvalidInput("Le code PIN compte de 4 à 8 chiffres.")
    row = _hashes(new_uow(), actor.user_id)
    if row is None:
        raise WrongSecret()
    ok = logins.guarded(
        new_uow, row.username, address, kind="confirm",
        check=lambda: isinstance(password, str) and 0 < len(password) <= SECRET_MAX
        and check_password_hash(row.password_hash, password))
    if not ok:
        raise WrongSecret("Mot de passe incorrect : le code PIN n'a pas changé.")
    pin_hash = (generate_password_hash(pin, method=parties.PASSWORD_METHOD)
                if pin else None)
    uow = new_uow()
    with uow:
        uow.conn.execute(update(users_t).where(users_t.c.id == actor.user_id)
                         .values(pin_hash=pin_hash))
        uow.commit()
