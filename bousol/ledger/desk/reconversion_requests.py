"""A prestataire asks for a reconversion; the bank executes or refuses it. No Flask here.

``requested → executed | cancelled | refused`` is the whole state machine
(:data:`TRANSITIONS`): the prestataire asks (for at most its balance at that moment)
and may cancel while the request waits; the bank (roles bank and admin) refuses it
with a reason, or executes it: :func:`bousol.ledger.books.operations.reconvert` for the
amount, then the request is marked executed with the entry.

Executing is one unit of work: the request row is locked (``FOR UPDATE``; SQLite: the
write lock), checked still ``requested``, the reconversion is written
(:func:`bousol.ledger.books.operations.reconvert_within`) and the request marked executed with
its entry, then all of it commits at once. A second clerk executing the same request
waits on the row's lock, then finds it executed; a cancel or a refusal waits the same
way; a crash leaves nothing half done. If the ledger refuses (``reserve_insufficient``,
``insufficient_funds``…) nothing is written and the request stays ``requested``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import Connection, and_, insert, select, update

from bousol.ledger.books import operations
from bousol.ledger.books.models import Account, Party, PartyKind, User
from bousol.ledger.desk.models import ReconversionRequest
from bousol.ledger.kernel import inputs, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import (
    InsufficientFunds,
    InvalidInput,
    NotAPrestataire,
    NotFound,
    ReconversionRequestTransition,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

requests_t, parties_t = ReconversionRequest.__table__, Party.__table__
accounts_t, users_t = Account.__table__, User.__table__

MEMO_MAX = 200
REASON_MAX = 500


class Status(enum.StrEnum):
    REQUESTED = "requested"
    EXECUTED = "executed"
    CANCELLED = "cancelled"
    REFUSED = "refused"


# The whole state machine: (from, to). Anything else is ``reconversion_request_transition``.
TRANSITIONS: frozenset[tuple[Status, Status]] = frozenset({
    (Status.REQUESTED, Status.EXECUTED),
    (Status.REQUESTED, Status.CANCELLED),
    (Status.REQUESTED, Status.REFUSED),
})

_STATUS_WORDS = {Status.REQUESTED: "en attente", Status.EXECUTED: "exécutée",
                 Status.CANCELLED: "annulée", Status.REFUSED: "refusée"}
_TARGET_WORDS = {Status.EXECUTED: "exécutée", Status.CANCELLED: "annulée",
                 Status.REFUSED: "refusée", Status.REQUESTED: "remise en attente"}


def _refusal(current: str, target: Status) -> ReconversionRequestTransition:
    try:
        state: Status | None = Status(current)
    except ValueError:
        state = None
    word = _STATUS_WORDS.get(state, str(current)) if state else str(current)
    return ReconversionRequestTransition(
        f"Cette demande de reconversion est {word} : elle ne peut plus être "
        f"{_TARGET_WORDS[target]}.", status=str(current), target=target.value)


MACHINE = StateMachine.moves(TRANSITIONS, _refusal)


def check_transition(current: str, target: Status) -> None:
    """Refuse (``reconversion_request_transition``, 409) any move not in TRANSITIONS."""
    MACHINE.next(current, target)


@dataclass(frozen=True)
class RequestRow:
    id: int
    party_id: int
    party_code: str
    party_name: str
    bousol_cents: int
    memo: str | None
    status: str
    created_at: dt.datetime
    created_by: str | None
    closed_at: dt.datetime | None
    closed_by: str | None
    reason: str | None
    entry_id: int | None
    balance_cents: int  # the prestataire's Bou'Sols now


def _rows(conn: Connection, *conditions, limit: int = 100,
          oldest_first: bool = False) -> list[RequestRow]:
    creator, closer = users_t.alias("creator"), users_t.alias("closer")
    rows = conn.execute(
        select(requests_t, parties_t.c.code, parties_t.c.name,
               creator.c.username.label("created_by"), closer.c.username.label("closed_by"),
               accounts_t.c.balance)
        .select_from(
            requests_t.join(parties_t, parties_t.c.id == requests_t.c.party_id)
            .outerjoin(accounts_t, and_(accounts_t.c.party_id == parties_t.c.id,
                                        accounts_t.c.currency == "BSOL",
                                        accounts_t.c.purpose == "main"))
            .outerjoin(creator, creator.c.id == requests_t.c.created_by_user_id)
            .outerjoin(closer, closer.c.id == requests_t.c.closed_by_user_id))
        .where(*conditions)
        .order_by(requests_t.c.id if oldest_first else requests_t.c.id.desc())
        .limit(limit)
    ).all()
    return [
        RequestRow(r.id, r.party_id, r.code, r.name, int(r.bousol_cents), r.memo, r.status,
                   r.created_at, r.created_by, r.closed_at, r.closed_by, r.reason,
                   r.entry_id, int(r.balance or 0))
        for r in rows
    ]


def get(conn: Connection, request_id: int) -> RequestRow | None:
    if not inputs.is_database_id(request_id):
        return None
    found = _rows(conn, requests_t.c.id == request_id)
    return found[0] if found else None


def for_party(conn: Connection, party_id: int, *, limit: int = 50) -> list[RequestRow]:
    """A prestataire's requests, newest first."""
    return _rows(conn, requests_t.c.party_id == party_id, limit=limit)


def pending(conn: Connection, *, limit: int = 200) -> list[RequestRow]:
    """The requests waiting for the bank, oldest first."""
    return _rows(conn, requests_t.c.status == Status.REQUESTED.value, limit=limit,
                 oldest_first=True)


def recently_closed(conn: Connection, *, limit: int = 20) -> list[RequestRow]:
    return _rows(conn, requests_t.c.status != Status.REQUESTED.value, limit=limit)


def _check_id(request_id: object) -> int:
    return inputs.database_id(request_id, NotFound("Demande de reconversion introuvable."))


def _lock(conn: Connection, request_id: int):
    """The request row, locked (FOR UPDATE; SQLite: the unit of work's write lock)."""
    row = conn.execute(
        select(requests_t, parties_t.c.code)
        .select_from(requests_t.join(parties_t, parties_t.c.id == requests_t.c.party_id))
        .where(requests_t.c.id == request_id)
        .with_for_update(of=requests_t)
    ).first()
    if row is None:
        raise NotFound("Demande de reconversion introuvable.")
    return row


def _own_party(conn: Connection, actor: Actor):
    """The prestataire acting (its party row), from the actor's party id or code."""
    actor.require(Role.PRESTATAIRE)
    condition = (parties_t.c.id == actor.party_id if actor.party_id is not None
                 else parties_t.c.code == actor.party_code)
    if actor.party_id is None and actor.party_code is None:
        raise NotAPrestataire()
    party = conn.execute(
        select(parties_t.c.id, parties_t.c.code, parties_t.c.kind).where(condition)
    ).first()
    if party is None or party.kind != PartyKind.PRESTATAIRE:
        raise NotAPrestataire()
    return party


# ---------------------------------------------------------------- the prestataire


@dataclass(frozen=True)
class Requested:
    request_id: int
    bousol_cents: int
    balance_cents: int


def request(uow: UnitOfWork, actor: Actor, bousols: object,
            memo: str | None = None) -> Requested:
    """The prestataire asks the bank to reconvert ``bousols``: at most its balance now
    (``insufficient_funds``); the balance is checked again when the bank executes it."""
    actor.require(Role.PRESTATAIRE)
    bousol_cents = money.parse_amount(bousols)
    if memo is not None and len(memo) > MEMO_MAX:
        raise InvalidInput(f"Commentaire trop long (au plus {MEMO_MAX} caractères).",
                           field="memo")
    try:
        memo = inputs.memo(memo)
    except InvalidInput as error:
        error.details["field"] = "memo"
        raise
    with uow:
        conn = uow.conn
        party = _own_party(conn, actor)
        balance = conn.execute(
            select(accounts_t.c.balance)
            .where(accounts_t.c.party_id == party.id, accounts_t.c.currency == "BSOL",
                   accounts_t.c.purpose == "main")
        ).scalar_one_or_none() or 0
        if bousol_cents > balance:
            raise InsufficientFunds(
                f"Votre solde ({money.format_fr(balance, 'B')}) ne couvre pas cette "
                "demande.", account=party.code)
        request_id = conn.execute(
            insert(requests_t).values(
                party_id=party.id, bousol_cents=bousol_cents, memo=memo,
                status=Status.REQUESTED.value, created_at=utcnow(),
                created_by_user_id=actor.user_id,
            ).returning(requests_t.c.id)
        ).scalar_one()
        uow.commit()
    return Requested(request_id, bousol_cents, int(balance))


def _close(conn: Connection, actor: Actor, request_id: int, target: Status, *,
           reason: str | None = None) -> None:
    """Cancel or refuse a waiting request (checked under the row's lock)."""
    done = conn.execute(
        update(requests_t)
        .where(requests_t.c.id == request_id,
               requests_t.c.status == Status.REQUESTED.value)
        .values(status=target.value, closed_at=utcnow(), closed_by_user_id=actor.user_id,
                reason=reason)
    ).rowcount
    if done != 1:  # the checks under the lock held; this is a second guard
        raise ReconversionRequestTransition()


def cancel(uow: UnitOfWork, actor: Actor, request_id: int) -> None:
    """The prestataire withdraws its own request while it waits."""
    actor.require(Role.PRESTATAIRE)
    request_id = _check_id(request_id)
    with uow:
        conn = uow.conn
        party = _own_party(conn, actor)
        row = _lock(conn, request_id)
        if row.party_id != party.id:  # someone else's request: as if it did not exist
            raise NotFound("Demande de reconversion introuvable.")
        check_transition(row.status, Status.CANCELLED)
        _close(conn, actor, request_id, Status.CANCELLED)
        uow.commit()


def refuse(uow: UnitOfWork, actor: Actor, request_id: int, reason: str | None) -> None:
    """The bank refuses a waiting request, saying why (the prestataire sees it)."""
    actor.require(Role.BANK, Role.ADMIN)
    request_id = _check_id(request_id)
    text = (reason or "").strip() if isinstance(reason, str) else ""
    if not text:
        raise InvalidInput("Indiquez le motif du refus : le prestataire le verra.",
                           field="reason")
    if len(text) > REASON_MAX:
        raise InvalidInput(f"Motif trop long (au plus {REASON_MAX} caractères).",
                           field="reason")
    text = inputs.memo(text)
    with uow:
        conn = uow.conn
        row = _lock(conn, request_id)
        check_transition(row.status, Status.REFUSED)
        _close(conn, actor, request_id, Status.REFUSED, reason=text)
        uow.commit()


# ---------------------------------------------------------------- execution


@dataclass(frozen=True)
class Executed:
    request_id: int
    entry_id: int
    party_code: str
    bousol_cents: int
    fee_cents: int
    euro_cents: int


def execution_memo(request_id: int, memo: str | None) -> str:
    text = f"Demande de reconversion n° {request_id}"
    return f"{text} — {memo}" if memo else text


def execute(uow: UnitOfWork, actor: Actor, request_id: int) -> Executed:
    """The bank reconverts the Bou'Sols asked for and marks the request executed, in
    one transaction (see the module's docstring).

    Refusals of the ledger (``reserve_insufficient``, ``insufficient_funds``…) leave the
    request ``requested`` and are raised; an executed, cancelled or refused request is
    ``reconversion_request_transition``.
    """
    actor.require(Role.BANK, Role.ADMIN)
    request_id = _check_id(request_id)
    with uow:
        conn = uow.conn
        row = _lock(conn, request_id)  # before the accounts: the order everyone takes
        check_transition(row.status, Status.EXECUTED)
        result = operations.reconvert_within(
            uow, actor, prestataire_code=row.code, bousol_cents=int(row.bousol_cents),
            memo=execution_memo(request_id, row.memo))
        marked = conn.execute(
            update(requests_t)
            .where(requests_t.c.id == request_id,
                   requests_t.c.status == Status.REQUESTED.value)
            .values(status=Status.EXECUTED.value, entry_id=result.entry_id,
                    closed_at=utcnow(), closed_by_user_id=actor.user_id)
        ).rowcount
        if marked != 1:  # cannot happen under the row's lock: refuse rather than move money
            raise ReconversionRequestTransition()
        uow.commit()
    return Executed(request_id, result.entry_id, row.code, result.bousol_cents,
                    result.fee_cents, result.euro_cents)
