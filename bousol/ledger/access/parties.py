"""Parties (solistes, prestataires, the CCAS), their accounts, and the users who log in."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from bousol.ledger.access import logins
from bousol.ledger.access.models import ApiToken, FirstPasswordCode, PasswordReset
from bousol.ledger.books.models import (
    PARTY_PREFIX,
    ROLE_PARTY_KIND,
    Account,
    Currency,
    Filiere,
    Party,
    PartyKind,
    User,
)
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import DuplicateUser, InvalidInput, WrongSecret
from bousol.ledger.kernel.inputs import (  # re-exported: the web layer's forms use it
    normalise_party_code as normalise_party_code,
)
from bousol.ledger.kernel.models import Counter, new_session_token, utcnow
from bousol.ledger.kernel.text import N_, sort_name
from bousol.ledger.kernel.uow import UnitOfWork

parties_t, accounts_t = Party.__table__, Account.__table__
users_t, counters_t = User.__table__, Counter.__table__

USERNAME_MAX = 80
_USERNAME_RE = re.compile(rf"[a-z0-9._@-]{{1,{USERNAME_MAX}}}")
PASSWORD_MIN = 8
PASSWORD_MAX = 200
# scrypt, werkzeug's default; the test suite swaps in a cheap method to stay fast.
PASSWORD_METHOD = "scrypt"  # noqa: S105 - a hashing method, not a password


def check_credentials(username: str | None, password: str | None) -> str:
    """The username, normalised (trimmed, lower case), once it and the password pass the
    rules; otherwise :class:`InvalidInput` about the first wrong one (``details["field"]``),
    with both in ``details["fields"]`` (field → message)."""
    username = (username or "").strip().lower()
    problems = {}
    if not _USERNAME_RE.fullmatch(username):
        problems["username"] = N_(  # N_: shown translated by the web layer
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
        sort_name=sort_name(name), filiere=filiere,
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


def solistes_among(conn: Connection, user_ids: set[int]) -> set[int]:
    """Which of these users are solistes (the audit page hides an aid beneficiary)."""
    if not user_ids:
        return set()
    return set(conn.execute(select(users_t.c.id).where(
        users_t.c.id.in_(user_ids), users_t.c.role == Role.SOLISTE.value)).scalars())


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


def check_new_password(password: object) -> str:
    """A new password passes the rules (8 to 200 characters), or :class:`InvalidInput`."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise InvalidInput(f"Mot de passe trop court ({PASSWORD_MIN} caractères au moins).",
                           field="new_password")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"Mot de passe trop long ({PASSWORD_MAX} caractères au plus).",
                           field="new_password")
    return password


def store_password(conn: Connection, user_id: int, password_hash: str,
                   now: dt.datetime) -> str:
    """Write a new password hash and end everything the old password opened: every
    session (the session token rotates; the new one is returned for the caller's own
    session), every API token, every forgotten-password link not used yet."""
    token = new_session_token()
    conn.execute(update(users_t).where(users_t.c.id == user_id).values(
        password_hash=password_hash, session_token=token))
    tokens_t, resets_t = ApiToken.__table__, PasswordReset.__table__
    conn.execute(update(tokens_t).where(tokens_t.c.user_id == user_id,
                                        tokens_t.c.revoked_at.is_(None))
                 .values(revoked_at=now, revoked_by_user_id=user_id))
    conn.execute(update(resets_t).where(resets_t.c.user_id == user_id,
                                        resets_t.c.used_at.is_(None)).values(used_at=now))
    # A first-password code printed at the desk dies too: once the member has chosen a
    # password (by a reset link, say), nobody holding the sheet — nor a clerk asking
    # for a new code — may set another one.
    codes_t = FirstPasswordCode.__table__
    conn.execute(update(codes_t).where(codes_t.c.user_id == user_id,
                                       codes_t.c.used_at.is_(None),
                                       codes_t.c.revoked_at.is_(None)).values(used_at=now))
    return token


def change_password(new_uow: Callable[[], UnitOfWork], actor: Actor, *, current: object,
                    new: object, address: str) -> str:
    """A logged-in user changes their password, after typing the current one (throttled
    as a ``confirm`` attempt: 5 wrong per 15 minutes, never counted against the log-in).
    Returns the new session token: every other session has ended."""
    if actor.user_id is None:
        raise InvalidInput("Seul un utilisateur connecté change son mot de passe.")
    new = check_new_password(new)
    uow = new_uow()
    with uow:
        row = uow.conn.execute(select(users_t.c.username, users_t.c.password_hash).where(
            users_t.c.id == actor.user_id, users_t.c.active.is_(True))).first()
    if row is None:
        raise WrongSecret("Mot de passe actuel incorrect : rien n'a changé.")
    current = current if isinstance(current, str) and len(current) <= PASSWORD_MAX else ""
    ok = logins.guarded(new_uow, row.username, address,
                        lambda: bool(current) and check_password_hash(row.password_hash,
                                                                      current),
                        kind="confirm")
    if not ok:
        raise WrongSecret("Mot de passe actuel incorrect : rien n'a changé.")
    password_hash = generate_password_hash(new, method=PASSWORD_METHOD)
    uow = new_uow()
    with uow:
        token = store_password(uow.conn, actor.user_id, password_hash, utcnow())
        uow.commit()
    return token


# ------------------------------------------------------------------ a member's own log-in


def _username_base(name: str) -> str:
    """``Élodie Caron-Lefèvre`` → ``elodie.caron-lefevre``: the name without accents, in
    the characters a username allows; ``membre`` when nothing is left."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9-]+", ".", plain).strip(".-")
    return re.sub(r"\.{2,}", ".", base)[:60].strip(".-") or "membre"


def create_member_login(uow: UnitOfWork, party: Party) -> CreatedUser:
    """The log-in of a soliste registered at the desk, in the caller's unit of work.

    The username comes from the name (``elodie.caron``; taken: ``elodie.caron.<party
    number>``; still taken: the party code). No one knows its password: it is the hash
    of a random secret nobody keeps, until the soliste chooses theirs with the one-time
    code of bousol/ledger/access/first_login.py. Each try is inserted in a savepoint, so a
    username taken meanwhile by a concurrent registration tries the next one."""
    import secrets

    base = _username_base(party.name)
    candidates = (base, f"{base}.{party.number}", party.code.lower())
    unusable = generate_password_hash(secrets.token_urlsafe(32), method=PASSWORD_METHOD)
    conn = uow.conn
    for username in candidates:
        if conn.execute(select(users_t.c.id).where(users_t.c.username == username)).first():
            continue
        try:
            with conn.begin_nested():
                user_id = conn.execute(insert(users_t).values(
                    username=username, password_hash=unusable, role=Role.SOLISTE.value,
                    party_id=party.id, active=True, created_at=utcnow(),
                    session_token=new_session_token(),
                ).returning(users_t.c.id)).scalar_one()
        except IntegrityError:
            continue
        return CreatedUser(user_id, username, Role.SOLISTE.value, party.code)
    raise DuplicateUser()
