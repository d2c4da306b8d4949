"""When an exchange must wait for a second person: the two thresholds, the euros a
member exchanged today, and the pending request the exchange records instead of posting.

The thresholds are the dated settings ``exchange.approval_above_cents`` (the euros of
one operation) and ``exchange.approval_daily_above_cents`` (the euros a member has
exchanged on this Paris day: posted exchanges not reversed, pending requests, and this
one). Both are checked by :func:`rule_for` under the locks every exchange takes on the
system accounts, so two exchanges at once cannot both slip under the daily amount. The
request's life (approve, refuse, cancel) is :mod:`bousol.ledger.desk.exchange_approvals`;
this half is what the exchange itself needs, so that the two do not import each other.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from bousol.ledger.books.models import SystemAccount
from bousol.ledger.books.posting import accounts_t, entries_t, postings_t
from bousol.ledger.books.statements import paris_day_start
from bousol.ledger.desk.models import ExchangeApproval, NoteMove
from bousol.ledger.kernel import settings
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.models import utcnow

approvals_t, moves_t = ExchangeApproval.__table__, NoteMove.__table__
PER_OPERATION = "exchange.approval_above_cents"
PER_DAY = "exchange.approval_daily_above_cents"


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    CANCELLED = "cancelled"


# ---------------------------------------------------------------- the thresholds


@dataclass(frozen=True)
class Thresholds:
    per_operation_cents: int
    per_day_cents: int


def thresholds(conn: Connection) -> Thresholds:
    values = settings.current(conn, [PER_OPERATION, PER_DAY])
    return Thresholds(int(values[PER_OPERATION]), int(values[PER_DAY]))


def exchanged_today(conn: Connection, party_id: int, today: dt.date | None = None) -> int:
    """The euros this member exchanged on this Paris day: posted exchanges (electronic:
    their Bou'Sols reached one of its accounts; notes: sold to it), less the reversed
    ones, plus its pending requests of the day."""
    today = today or paris_today()
    start, end = paris_day_start(today), paris_day_start(today + dt.timedelta(days=1))
    reversals = entries_t.alias("reversals")
    its_entries = (
        select(postings_t.c.entry_id)
        .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        .where(accounts_t.c.party_id == party_id)
        .union(select(moves_t.c.entry_id).where(moves_t.c.party_id == party_id,
                                                 moves_t.c.entry_id.is_not(None)))
    )
    posted = conn.execute(
        select(func.coalesce(func.sum(-postings_t.c.amount), 0))
        .select_from(postings_t
                     .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
                     .join(entries_t, entries_t.c.id == postings_t.c.entry_id))
        .where(accounts_t.c.system_code == SystemAccount.EUR_OUTSIDE.value,
               entries_t.c.kind == "exchange",
               entries_t.c.created_at >= start, entries_t.c.created_at < end,
               entries_t.c.id.in_(its_entries),
               ~select(reversals.c.id).where(reversals.c.reverses_id == entries_t.c.id)
               .exists())
    ).scalar_one()
    pending = conn.execute(
        select(func.coalesce(func.sum(approvals_t.c.amount_cents), 0))
        .where(approvals_t.c.party_id == party_id,
               approvals_t.c.status == Status.PENDING.value,
               approvals_t.c.requested_at >= start, approvals_t.c.requested_at < end)
    ).scalar_one()
    return int(posted) + int(pending)


def rule_for(conn: Connection, party_id: int, euro_cents: int) -> str | None:
    """``"operation"`` or ``"day"``: the threshold this exchange is above (it must wait
    for a second person), or None (it posts at once). At or under both, it posts."""
    limits = thresholds(conn)
    if euro_cents > limits.per_operation_cents:
        return "operation"
    if exchanged_today(conn, party_id) + euro_cents > limits.per_day_cents:
        return "day"
    return None


# ---------------------------------------------------------------- asking


def record(conn: Connection, actor: Actor, *, party_id: int, euro_cents: int, tender: str,
           programme_id: int | None, memo: str | None, rule: str) -> int:
    """A pending request (inside the exchange's unit of work, under its locks)."""
    return conn.execute(insert(approvals_t).values(
        party_id=party_id, amount_cents=euro_cents, tender=tender, programme_id=programme_id,
        memo=memo, rule=rule, status=Status.PENDING.value, requested_at=utcnow(),
        requested_by_user_id=actor.user_id,
    ).returning(approvals_t.c.id)).scalar_one()
