"""Parties (solistes, prestataires, the CCAS), their accounts, and the users who log in."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from bousol.ledger.actors import Actor
from bousol.ledger.errors import DuplicateUser, InvalidInput
from bousol.ledger.models import (
    PARTY_PREFIX,
    ROLE_PARTY_KIND,
    Account,
    Counter,
    Currency,
    Filiere,
    Party,
    PartyKind,
    Role,
    User,
)
from bousol.ledger.uow import UnitOfWork

parties_t, accounts_t = Party.__table__, Account.__table__
users_t, counters_t = User.__table__, Counter.__table__

USERNAME_MAX = 80
_USERNAME_RE = re.compile(rf"[a-z0-9._@-]{{1,{USERNAME_MAX}}}")
PASSWORD_MIN = 8
# scrypt, werkzeug's default; the test suite swaps in a cheap method to stay fast.
PASSWORD_METHOD = "scrypt"  # noqa: S105 - a hashing method, not a password


def check_credentials(username: str | None, password: str | None) -> str:
    """The username, normalised (trimmed, lower case), once it and the password pass the
    rules; otherwise :class:`InvalidInput` about the first wrong one (``details["field"]``),
    with both in ``details["fields"]`` (field → message)."""
    username = (username or "").strip().lower()
    problems = {}
    if not _USERNAME_RE.fullmatch(username):
        problems["username"] = (
            "Identifiant invalide : lettres, chiffres, . _ @ - (80 caractères au plus).")
    if not password or len(password) < PASSWORD_MIN:
        problems["password"] = f"Mot de passe trop court ({PASSWORD_MIN} caractères au moins)."
    if problems:
        field, message = next(iter(problems.items()))
        raise InvalidInput(message, field=field, fields=problems)
    return username


def next_number(uow: UnitOfWork, name: str) -> int:
    """Increment and return a gap-free counter, under the counter row's write lock."""
    conn = uow.conn
    value = conn.execute(
        update(counters_t)
        .where(counters_t.c.name == name)
        .values(value=counters_t.c.value + 1)
        .returning(counters_t.c.value)
    ).scalar_one_or_none()
    if value is None:
        conn.execute(insert(counters_t).values(name=name, value=1))
        value = 1
    return value


def create_party(
    uow: UnitOfWork, *, kind: PartyKind, name: str, filiere: str | None = None,
    status: str | None = None,
) -> Party:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("Nom obligatoire (200 caractères au plus).")
    if kind == PartyKind.PRESTATAIRE:
        try:
            filiere = Filiere(filiere).value
        except ValueError:
            raise InvalidInput(
                "Filière obligatoire pour un prestataire : "
                + ", ".join(f.value for f in Filiere) + "."
            ) from None
    elif filiere is not None:
        raise InvalidInput("Seul un prestataire a une filière.")
    prefix = PARTY_PREFIX[kind]
    number = next_number(uow, f"party:{prefix}")
    party = Party(
        kind=kind.value, number=number, code=f"{prefix}-{number:06d}", name=name,
        filiere=filiere,
        status=status or ("approved" if kind == PartyKind.PRESTATAIRE else "active"),
    )
    party.accounts.append(
        Account(currency=Currency.BSOL.value, label=f"Compte Bou'Sol {party.code}", balance=0,
                allow_negative=False)
    )
    # Every member party holds a Bou'Sol account and a euro account (a prestataire's
    # reconverted euros wait there until the bank transfer pays them out).
    party.accounts.append(
        Account(currency=Currency.EUR.value, label=f"Compte euros {party.code}", balance=0,
                allow_negative=False)
    )
    uow.session.add(party)
    uow.session.flush()
    return party


@dataclass(frozen=True)
class CreatedUser:
    user_id: int
    username: str
    role: str
    party_code: str | None


def create_user(
    uow: UnitOfWork,
    actor: Actor,
    *,
    username: str,
    password: str,
    role: Role | str,
    name: str | None = None,
    filiere: str | None = None,
    party_code: str | None = None,
) -> CreatedUser:
    """Create a user and, for soliste/prestataire/ccas, its party (or join ``party_code``).

    Prestataires created here are approved at once (the command line is the
    association's own tool; online applications go through approval).
    """
    actor.require(Role.ADMIN)
    username = check_credentials(username, password)
    try:
        role = Role(role)
    except ValueError:
        raise InvalidInput("Rôle inconnu.") from None

    with uow:
        session = uow.session
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise DuplicateUser()
        party = None
        kind = ROLE_PARTY_KIND.get(role)
        if party_code is not None:
            party = session.scalar(select(Party).where(Party.code == party_code))
            if party is None or kind is None or party.kind != kind.value:
                raise InvalidInput(f"Aucun adhérent {party_code} de ce type.")
        elif kind is not None:
            party = create_party(uow, kind=kind, name=name or username, filiere=filiere)
        password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        user = User(username=username, password_hash=password_hash, role=role.value, party=party)
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise DuplicateUser() from None
        created = CreatedUser(user.id, username, role.value, party.code if party else None)
        uow.commit()
        return created


def authenticate(uow: UnitOfWork, username: str, password: str) -> User | None:
    """The user with this username and password, or None.

    Give it a read-only unit of work: the row is read in it, and the hash (tens of
    milliseconds of scrypt) is checked after it closes, so no transaction is held.
    """
    with uow:
        user = uow.session.scalar(
            select(User).where(User.username == (username or "").strip().lower())
        )
        stored_hash = user.password_hash if user is not None and user.active else None
    if stored_hash is None:
        # Spend the same time as a real check, so timing does not reveal usernames.
        check_password_hash(_dummy_hash(), password or "")
        return None
    return user if check_password_hash(stored_hash, password or "") else None


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("not-a-real-password")


def actor_for(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        role=Role(user.role),
        party_id=user.party_id,
        party_code=user.party.code if user.party else None,
        username=user.username,
    )
