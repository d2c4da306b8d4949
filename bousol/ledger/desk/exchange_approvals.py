"""Exchanges above a per-operation or a per-day amount wait for a second person's
approval (issue 13, docs/duties.md). No Flask here.

``pending → approved | refused | cancelled`` is the whole state machine
(:data:`TRANSITIONS`). A pending request moves no money: the desk takes the euros only
once it is approved, and the exchange is then posted exactly as a normal one (bonus
fund, ceiling, closed day, programme budget, all checked again at that moment). The
approver or refuser is another bank user or an admin, never the one who asked
(``second_person_required``; a CHECK backs it); the one who asked may cancel it.

The thresholds are the dated settings ``exchange.approval_above_cents`` (the euros of
one operation) and ``exchange.approval_daily_above_cents`` (the euros a member has
exchanged on this Paris day: posted exchanges not reversed, pending requests, and this
one). Both are checked by :func:`rule_for` under the locks every exchange takes on the
system accounts, so two exchanges at once cannot both slip under the daily amount.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from bousol.ledger.books.models import Party, User
from bousol.ledger.ccas.models import AidProgramme
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.desk.exchange_limits import (  # noqa: F401  (the limits the approvals
    PER_DAY,  # apply: importable from here too)
    PER_OPERATION,
    Status,
    Thresholds,
    exchanged_today,
    record,
    rule_for,
    thresholds,
)
from bousol.ledger.desk.models import ExchangeApproval, NoteMove
from bousol.ledger.kernel import inputs
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import (
    ExchangeApprovalTransition,
    Forbidden,
    InvalidInput,
    SecondPersonRequired,
    UnknownExchangeApproval,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

approvals_t, parties_t, users_t = ExchangeApproval.__table__, Party.__table__, User.__table__
programmes_t, moves_t = AidProgramme.__table__, NoteMove.__table__
REASON_MAX = 500


TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset({
    (Status.PENDING, Status.APPROVED),
    (Status.PENDING, Status.REFUSED),
    (Status.PENDING, Status.CANCELLED),
})

_CLOSED_WORDS = {
    Status.APPROVED: "Cette demande de change est déjà approuvée : le change est fait.",
    Status.REFUSED: "Cette demande de change a été refusée.",
    Status.CANCELLED: "Cette demande de change a été annulée.",
}


MACHINE = StateMachine.moves(TRANSITIONS, lambda current, target: ExchangeApprovalTransition(
    _CLOSED_WORDS.get(current), status=str(current), target=target.value))


def check_transition(current: str, target: Status) -> None:
    """Refuse (``exchange_approval_transition``) any move not in :data:`TRANSITIONS`."""
    MACHINE.next(current, target)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Request:
    id: int
    party_id: int
    party_code: str
    party_name: str
    euro_cents: int
    tender: str
    programme_id: int | None
    programme_name: str | None
    memo: str | None
    rule: str
    status: str
    requested_at: dt.datetime
    requested_by_user_id: int | None
    requested_by: str | None
    decided_at: dt.datetime | None
    decided_by: str | None
    cancelled_by: str | None
    reason: str | None
    entry_id: int | None

    def may_decide(self, actor: Actor) -> bool:
        """Whether this user may approve or refuse it (never the one who asked)."""
        return (self.status == Status.PENDING and actor.role in (Role.BANK, Role.ADMIN)
                and actor.user_id is not None and actor.user_id != self.requested_by_user_id)

    def may_cancel(self, actor: Actor) -> bool:
        return (self.status == Status.PENDING and actor.user_id is not None
                and actor.user_id == self.requested_by_user_id)


def _select():
    asker, decider, canceller = (users_t.alias("asker"), users_t.alias("decider"),
                                 users_t.alias("canceller"))
    return (
        select(approvals_t, parties_t.c.code, parties_t.c.name,
               programmes_t.c.name.label("programme_name"),
               asker.c.username.label("requested_by"),
               decider.c.username.label("decided_by"),
               canceller.c.username.label("cancelled_by"))
        .select_from(
            approvals_t.join(parties_t, parties_t.c.id == approvals_t.c.party_id)
            .outerjoin(programmes_t, programmes_t.c.id == approvals_t.c.programme_id)
            .outerjoin(asker, asker.c.id == approvals_t.c.requested_by_user_id)
            .outerjoin(decider, decider.c.id == approvals_t.c.decided_by_user_id)
            .outerjoin(canceller, canceller.c.id == approvals_t.c.cancelled_by_user_id))
    )


def _request(r) -> Request:
    return Request(r.id, r.party_id, r.code, r.name, r.amount_cents, r.tender, r.programme_id,
                   r.programme_name, r.memo, r.rule, r.status, r.requested_at,
                   r.requested_by_user_id, r.requested_by, r.decided_at, r.decided_by,
                   r.cancelled_by, r.reason, r.entry_id)


def pending(conn: Connection, limit: int = 200) -> list[Request]:
    """The requests waiting for a second person, oldest first."""
    rows = conn.execute(_select().where(approvals_t.c.status == Status.PENDING.value)
                        .order_by(approvals_t.c.id).limit(limit)).all()
    return [_request(r) for r in rows]


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(approvals_t)
                        .where(approvals_t.c.status == Status.PENDING.value)).scalar_one()


def recent(conn: Connection, limit: int = 30) -> list[Request]:
    """The last decided or cancelled requests, newest first."""
    rows = conn.execute(_select().where(approvals_t.c.status != Status.PENDING.value)
                        .order_by(approvals_t.c.id.desc()).limit(limit)).all()
    return [_request(r) for r in rows]


def get(conn: Connection, approval_id: int) -> Request | None:
    row = conn.execute(_select().where(approvals_t.c.id == approval_id)).first()
    return None if row is None else _request(row)


# ---------------------------------------------------------------- deciding


def _check_id(approval_id: object) -> int:
    return inputs.database_id(approval_id, UnknownExchangeApproval())


def _lock(conn: Connection, approval_id: int):
    """The request's row, locked: two decisions at once are serialised here (SQLite:
    the writer's lock the unit of work already holds)."""
    row = conn.execute(select(approvals_t).where(approvals_t.c.id == approval_id)
                       .with_for_update()).first()
    if row is None:
        raise UnknownExchangeApproval()
    return row


def _second_person(actor: Actor, row) -> None:
    actor.require(Role.BANK, Role.ADMIN)
    if actor.user_id is None or actor.user_id == row.requested_by_user_id:
        raise SecondPersonRequired(
            "Vous avez demandé ce change : un autre agent de la banque ou un "
            "administrateur doit l'approuver ou le refuser.")


def approve(uow: UnitOfWork, actor: Actor, approval_id: int) -> Request:
    """Another bank user or an admin approves: the exchange is posted now, with every
    rule of a normal exchange (a refusal leaves the request pending); once."""
    from bousol.ledger.books import operations  # operations calls this module too

    approval_id = _check_id(approval_id)
    with uow:
        conn = uow.conn
        row = _lock(conn, approval_id)
        check_transition(row.status, Status.APPROVED)
        _second_person(actor, row)
        code = conn.execute(select(parties_t.c.code)
                            .where(parties_t.c.id == row.party_id)).scalar_one()
        result = desk_exchange.exchange_within(
            uow, actor, party_code=code, euro_cents=row.amount_cents,
            tender=operations.Tender(row.tender), memo=row.memo,
            programme_id=row.programme_id, approval=row)
        done = conn.execute(
            update(approvals_t)
            .where(approvals_t.c.id == approval_id,
                   approvals_t.c.status == Status.PENDING.value)
            .values(status=Status.APPROVED.value, decided_at=utcnow(),
                    decided_by_user_id=actor.user_id, entry_id=result.entry_id)).rowcount
        if done != 1:  # never with the row lock; the conditional update backs it
            raise ExchangeApprovalTransition()
        uow.commit()
    with uow:
        return get(uow.conn, approval_id)


def _reason(reason: object) -> str:
    text = inputs.memo(reason if reason is None or isinstance(reason, str) else str(reason))
    if text is None:
        raise InvalidInput("Indiquez le motif du refus.", field="reason")
    if len(text) > REASON_MAX:
        raise InvalidInput(f"Motif trop long ({REASON_MAX} caractères au plus).",
                           field="reason")
    return text


def refuse(uow: UnitOfWork, actor: Actor, approval_id: int, reason: object) -> Request:
    """Another bank user or an admin refuses, with a reason: nothing moves."""
    approval_id = _check_id(approval_id)
    text = _reason(reason)
    with uow:
        conn = uow.conn
        row = _lock(conn, approval_id)
        check_transition(row.status, Status.REFUSED)
        _second_person(actor, row)
        conn.execute(update(approvals_t).where(approvals_t.c.id == approval_id)
                     .values(status=Status.REFUSED.value, decided_at=utcnow(),
                             decided_by_user_id=actor.user_id, reason=text))
        uow.commit()
    with uow:
        return get(uow.conn, approval_id)


def cancel(uow: UnitOfWork, actor: Actor, approval_id: int) -> Request:
    """The one who asked withdraws it (the member changed their mind): nothing moves."""
    approval_id = _check_id(approval_id)
    with uow:
        conn = uow.conn
        row = _lock(conn, approval_id)
        if actor.user_id is None or actor.user_id != row.requested_by_user_id:
            raise Forbidden("Seule la personne qui a demandé ce change peut l'annuler ; "
                            "une autre peut le refuser.")
        check_transition(row.status, Status.CANCELLED)
        conn.execute(update(approvals_t).where(approvals_t.c.id == approval_id)
                     .values(status=Status.CANCELLED.value, decided_at=utcnow(),
                             cancelled_by_user_id=actor.user_id))
        uow.commit()
    with uow:
        return get(uow.conn, approval_id)

