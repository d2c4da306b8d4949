"""Password and PIN checks that cannot be raced nor turned into a lock-out (no Flask).

The rules (docs/security.md names them all):

- **Reserve, then check.** An attempt is written, as a failure, in a short unit of
  work of its own *before* the password hash is computed; the count that allows it is
  read in the same transaction, under a lock on its username and its address
  (PostgreSQL: transaction-level advisory locks taken in sorted order; SQLite: the
  write lock ``BEGIN IMMEDIATE`` takes). Only then is the hash checked, outside any
  transaction, and the row marked succeeded. So whatever the concurrency and the
  number of server processes, no more passwords are checked than the limits allow,
  and a check that dies halfway counts as a failure.
- **Log-ins (kind ``login``)**, three limits:
  - per username *and* address: 5 failures (since that pair's last success, within
    24 hours) are free; then each new failure doubles a delay counted from the last
    one: 1, 2, 4 … minutes, at most 60. An attacker slows down only their own pair;
  - per username from anywhere: 20 failures within 15 minutes (since the user's last
    success) pause the other addresses for the rest of the window;
  - per address: 30 failures within 15 minutes pause that address;
  an address the user has logged in from within 30 days (a "known" address: the
  till's, the desk's) is exempt from the last two, so an attacker elsewhere, or a
  neighbour behind the same proxy, cannot take an account or a shop offline. A user
  kept out anyway gets in with a one-time e-mailed link (bousol/ledger/access/password_resets.py).
- **PINs (kind ``pin``)** and **the password typed again by a logged-in user (kind
  ``confirm``)**: 5 failures per user within 15 minutes pause that kind only; they
  never count against the log-in.
- **/agrement (kind ``signup``)**: the public application form says a username is
  unavailable only for an application complete enough to be sent, and at most 5
  times per address per 15 minutes; the 6th gets "too many attempts".
- A refused attempt is not checked (no hash is computed) and not written, so it never
  extends the wait.

Logging out or changing the password rotates the user's session token, which ends
every session of that user.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, exists, func, insert, select, text, update

from bousol.ledger.access.models import LoginAttempt
from bousol.ledger.books.models import User
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import TooManyAttempts
from bousol.ledger.kernel.models import new_session_token, utcnow
from bousol.ledger.kernel.uow import UnitOfWork

WINDOW = dt.timedelta(minutes=15)
# Log-ins: per (username, address) before the growing delay starts.
MAX_FAILURES_PER_USERNAME = 5
FIRST_DELAY = dt.timedelta(minutes=1)
MAX_DELAY = dt.timedelta(minutes=60)
PAIR_MEMORY = dt.timedelta(hours=24)
# Log-ins: per username from every address not known for it, per WINDOW.
MAX_FAILURES_PER_USERNAME_ANYWHERE = 20
# Log-ins: per address, per WINDOW (an address known for the user is exempt).
MAX_FAILURES_PER_ADDRESS = 30
KNOWN_ADDRESS_FOR = dt.timedelta(days=30)
# A PIN at payment; the password typed again by a logged-in user: per user, per WINDOW.
MAX_PIN_FAILURES = 5
MAX_CONFIRM_FAILURES = 5

KINDS = ("login", "pin", "confirm", "signup")
# /agrement: usernames said unavailable, per address and WINDOW.
MAX_SIGNUP_REFUSALS = 5
attempts_t, users_t = LoginAttempt.__table__, User.__table__
T = TypeVar("T")


def normalise(username: object) -> str:
    return (username if isinstance(username, str) else "").strip().lower()[:80]


def too_many(wait: int, message: str | None = None) -> TooManyAttempts:
    minutes = max(1, -(-wait // 60))
    return TooManyAttempts(
        message or f"Trop de tentatives : réessayez dans {minutes} minute(s).",
        retry_after=wait, minutes=minutes)


def _lock(conn: Connection, username: str, address: str, kind: str) -> None:
    """Serialise the reservations that share a username or an address. PostgreSQL:
    advisory locks held until the transaction ends, in sorted order (no deadlock);
    SQLite: the unit of work's BEGIN IMMEDIATE already serialises every writer."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({f"user:{username}" if kind != "signup" else "",
                   f"address:{address}" if kind in ("login", "signup") else ""} - {""})
    for key in keys:
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


def _failures(conn: Connection, where, since: dt.datetime, limit: int) -> list[dt.datetime]:
    """The latest ``limit`` failures matching ``where`` after ``since``, newest first."""
    return [as_utc(at) for at in conn.execute(
        select(attempts_t.c.at)
        .where(*where, attempts_t.c.succeeded.is_(False), attempts_t.c.at > since)
        .order_by(attempts_t.c.at.desc()).limit(limit)).scalars()]


def _last_success(conn: Connection, *where) -> dt.datetime | None:
    last = conn.execute(select(func.max(attempts_t.c.at)).where(
        *where, attempts_t.c.succeeded.is_(True))).scalar()
    return as_utc(last) if last is not None else None


def _window_wait(failures: list[dt.datetime], limit: int, now: dt.datetime) -> int:
    if len(failures) < limit:
        return 0
    return max(0, int((failures[-1] + WINDOW - now).total_seconds()) + 1)


def pair_delay(failures: int) -> dt.timedelta:
    """The wait after the ``failures``-th failure of one username from one address."""
    if failures < MAX_FAILURES_PER_USERNAME:
        return dt.timedelta(0)
    return min(MAX_DELAY, FIRST_DELAY * 2 ** min(failures - MAX_FAILURES_PER_USERNAME, 12))


def _wait(conn: Connection, username: str, address: str, kind: str,
          now: dt.datetime) -> int:
    c = attempts_t.c
    if kind == "signup":
        return _window_wait(_failures(conn, (c.kind == kind, c.address == address),
                                      now - WINDOW, MAX_SIGNUP_REFUSALS),
                            MAX_SIGNUP_REFUSALS, now)
    if kind != "login":
        limit = MAX_PIN_FAILURES if kind == "pin" else MAX_CONFIRM_FAILURES
        mine = (c.username == username, c.kind == kind)
        since = max(now - WINDOW, _last_success(conn, *mine) or now - WINDOW)
        return _window_wait(_failures(conn, mine, since, limit), limit, now)
    login, of_user = c.kind == "login", c.username == username
    waits = [0]
    pair = (login, of_user, c.address == address)
    since = max(now - PAIR_MEMORY, _last_success(conn, *pair) or now - PAIR_MEMORY)
    failed = _failures(conn, pair, since, MAX_FAILURES_PER_USERNAME + 13)
    if failed:
        waits.append(int((failed[0] + pair_delay(len(failed)) - now).total_seconds()) + 1
                     if len(failed) >= MAX_FAILURES_PER_USERNAME else 0)
    known = conn.execute(select(exists().where(
        *pair, c.succeeded.is_(True), c.at > now - KNOWN_ADDRESS_FOR))).scalar()
    if not known:
        since = max(now - WINDOW, _last_success(conn, login, of_user) or now - WINDOW)
        waits.append(_window_wait(
            _failures(conn, (login, of_user), since, MAX_FAILURES_PER_USERNAME_ANYWHERE),
            MAX_FAILURES_PER_USERNAME_ANYWHERE, now))
        waits.append(_window_wait(
            _failures(conn, (login, c.address == address), now - WINDOW,
                      MAX_FAILURES_PER_ADDRESS),
            MAX_FAILURES_PER_ADDRESS, now))
    return max(0, *waits)


@dataclass(frozen=True)
class Reservation:
    """An attempt written as a failure; :func:`mark_succeeded` turns it into a success."""

    attempt_id: int
    username: str
    address: str
    kind: str


def reserve(uow: UnitOfWork, username: object, address: str, *, kind: str = "login",
            now: dt.datetime | None = None) -> Reservation:
    """Allow one check now and write it (failed), or raise :class:`TooManyAttempts`
    (``retry_after`` seconds) writing nothing. One short unit of work: commit it
    before computing any hash."""
    if kind not in KINDS:
        raise ValueError(kind)
    username, address = normalise(username), (address or "unknown")[:64]
    with uow:
        conn = uow.conn
        _lock(conn, username, address, kind)
        now = now or utcnow()
        wait = _wait(conn, username, address, kind, now)
        if wait:
            raise too_many(wait)
        attempt_id = conn.execute(insert(attempts_t).values(
            username=username, address=address, succeeded=False, at=now, kind=kind,
        ).returning(attempts_t.c.id)).scalar_one()
        uow.commit()
    return Reservation(attempt_id, username, address, kind)


def mark_succeeded(uow: UnitOfWork, reservation: Reservation) -> None:
    with uow:
        uow.conn.execute(update(attempts_t).where(attempts_t.c.id == reservation.attempt_id)
                         .values(succeeded=True))
        uow.commit()


def guarded(new_uow: Callable[[], UnitOfWork], username: object, address: str,
            check: Callable[[], T | None], *, kind: str = "login") -> T | None:
    """Reserve an attempt, run ``check`` (the hash, outside any transaction), and mark
    the attempt succeeded when it returns something truthy; return what it returned.
    Raises :class:`TooManyAttempts` before checking anything when over a limit."""
    reservation = reserve(new_uow(), username, address, kind=kind)
    result = check()
    if result:
        mark_succeeded(new_uow(), reservation)
    return result


def seconds_to_wait(uow: UnitOfWork, username: str, address: str,
                    now: dt.datetime | None = None, *, kind: str = "login") -> int:
    """0 when an attempt may be made now; otherwise how many seconds to wait (a read:
    only :func:`reserve` decides, under its lock)."""
    with uow:
        return _wait(uow.conn, normalise(username), (address or "unknown")[:64], kind,
                     now or utcnow())


def record_attempt(uow: UnitOfWork, username: str, address: str, succeeded: bool,
                   *, kind: str = "login", at: dt.datetime | None = None) -> None:
    """Write an attempt as it ended (tests, and a successful e-mailed link: the address
    it was used from becomes known for the user)."""
    with uow:
        uow.conn.execute(insert(attempts_t).values(
            username=normalise(username), address=(address or "unknown")[:64],
            succeeded=succeeded, at=at or utcnow(), kind=kind))
        uow.commit()


def end_all_sessions(uow: UnitOfWork, user_id: int) -> str:
    """Rotate the session token: every cookie carrying the old one stops working.
    Returns the new token (the caller may log its own session in again with it)."""
    token = new_session_token()
    with uow:
        uow.conn.execute(
            update(users_t).where(users_t.c.id == user_id).values(session_token=token))
        uow.commit()
    return token
