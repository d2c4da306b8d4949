"""Login throttling and session revocation (no Flask here).

Rules (docs/ledger.md):
- per username: after 5 failed attempts within 15 minutes (counted since its last
  successful login), further attempts are refused until the oldest of those failures
  is 15 minutes old;
- per address: after 20 failed attempts within 15 minutes, the same;
- a refused attempt is not checked (no password hash is computed) and not counted,
  so an attacker cannot keep a user locked out for longer than the window.
Logging out rotates the user's session token, which ends every session of that user.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, select, update

from bousol.ledger.clock import as_utc
from bousol.ledger.models import LoginAttempt, User, new_session_token, utcnow
from bousol.ledger.uow import UnitOfWork

WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_USERNAME = 5
MAX_FAILURES_PER_ADDRESS = 20

attempts_t, users_t = LoginAttempt.__table__, User.__table__


def seconds_to_wait(uow: UnitOfWork, username: str, address: str,
                    now: dt.datetime | None = None) -> int:
    """0 when an attempt may be made now; otherwise how many seconds to wait."""
    now = now or utcnow()
    since = now - WINDOW
    username = (username or "").strip().lower()[:80]
    with uow:
        conn = uow.conn
        last_success = conn.execute(
            select(func.max(attempts_t.c.at)).where(
                attempts_t.c.username == username, attempts_t.c.succeeded.is_(True))
        ).scalar()
        if last_success is not None:
            since = max(since, as_utc(last_success))
        waits = []
        for column, value, limit in (
            (attempts_t.c.username, username, MAX_FAILURES_PER_USERNAME),
            (attempts_t.c.address, address, MAX_FAILURES_PER_ADDRESS),
        ):
            failures = conn.execute(
                select(attempts_t.c.at)
                .where(column == value, attempts_t.c.succeeded.is_(False),
                       attempts_t.c.at > since)
                .order_by(attempts_t.c.at.desc())
                .limit(limit)
            ).scalars().all()
            if len(failures) >= limit:
                oldest = as_utc(failures[-1])
                waits.append(int((oldest + WINDOW - now).total_seconds()) + 1)
    return max([0, *waits])


def record_attempt(uow: UnitOfWork, username: str, address: str, succeeded: bool) -> None:
    with uow:
        uow.conn.execute(insert(attempts_t).values(
            username=(username or "").strip().lower()[:80], address=address[:64],
            succeeded=succeeded, at=utcnow()))
        uow.commit()


def end_all_sessions(uow: UnitOfWork, user_id: int) -> None:
    """Rotate the session token: every cookie carrying the old one stops working."""
    with uow:
        uow.conn.execute(
            update(users_t).where(users_t.c.id == user_id)
            .values(session_token=new_session_token()))
        uow.commit()
