"""Payment requests: a prestataire asks to be paid, a payer pays once.

Two kinds (docs/payments.md):
- ``till``: at the till, the merchant types an amount; the screen shows a QR code of
  the pay link and a short code. Whoever opens the link (a soliste, or a prestataire in
  the B2B phase) pays it. It expires after ``payment_requests.ttl_minutes``.
- ``invoice``: in the B2B phase, a supplier sends a request for an invoice to one
  customer prestataire, who accepts (pays) or declines it. It expires after
  ``payment_requests.invoice_ttl_days``.

A request is paid at most once, whatever the clicks or devices: the request row is
locked (``FOR UPDATE``; SQLite serialises writers), its status is checked under the
lock, and the same transaction writes the payment and marks the request paid (the
update also requires ``status = 'open'``, and ``paid_entry_id`` is unique). The same
payer asking again gets the first payment back (a second tap on a slow phone); anyone
else gets ``already_paid``.

The states, as a table: open → paid | declined | cancelled. An open request past its
expiry is *expired*: no transition leaves it (it is shown so, not rewritten).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import aliased

from bousol.ledger.books import operations, rules
from bousol.ledger.books.models import Account, Entry, Party, PartyKind, Posting
from bousol.ledger.books.posting import accounts_t
from bousol.ledger.kernel import idempotency, inputs, money, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import (
    AlreadyPaid,
    DomainError,
    FlowNotAllowed,
    Forbidden,
    InvalidInput,
    NotFound,
    RequestClosed,
    RequestExpired,
    RequestNotForYou,
    UnknownParty,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants.approval import Status as ApprovalStatus
from bousol.ledger.merchants.models import PaymentRequest

requests_t, parties_t = PaymentRequest.__table__, Party.__table__
PARTY_CODE_MAX = 16  # longer: no party's code (a typed or forged link)

# Short codes are read aloud and typed on a phone: no 0/O, 1/I/L look-alikes.
SHORT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SHORT_CODE_LENGTH = 6  # 31^6 ≈ 887 million; codes are unique for ever
REFERENCE_MAX = 140

OPEN, PAID, DECLINED, CANCELLED, EXPIRED = "open", "paid", "declined", "cancelled", "expired"

# (status, action) → new status. Expired is derived from the clock and has no exit.
# Who shows on a request: who paid it, else the customer it is addressed to.
_counterparty_id = func.coalesce(requests_t.c.paid_by_party_id, requests_t.c.payer_party_id)

TRANSITIONS: dict[tuple[str, str], str] = {
    (OPEN, "pay"): PAID,
    (OPEN, "decline"): DECLINED,
    (OPEN, "cancel"): CANCELLED,
}


def effective_status(status: str, expires_at: dt.datetime, now: dt.datetime | None = None) -> str:
    if status == OPEN and as_utc(expires_at) <= (now or utcnow()):
        return EXPIRED
    return status


def _refusal(status: str, _action: str) -> DomainError:
    if status == PAID:
        return AlreadyPaid()
    if status == EXPIRED:
        return RequestExpired()
    return RequestClosed()


MACHINE = StateMachine(TRANSITIONS, _refusal)


def next_status(status: str, action: str) -> str:
    """The status after ``action``, or the error that says why it cannot happen."""
    return MACHINE.next(status, action)


@dataclass(frozen=True)
class RequestView:
    id: int
    token: str
    short_code: str
    kind: str
    amount_cents: int
    reference: str | None
    status: str  # effective: open, paid, declined, cancelled or expired
    created_at: dt.datetime
    expires_at: dt.datetime
    payee_code: str
    payee_name: str
    payer_code: str | None  # the addressed customer (invoice) or who paid
    payer_name: str | None
    paid_entry_id: int | None
    closed_at: dt.datetime | None
    decline_reason: str | None


def _reference(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("Référence invalide.")
    value = inputs.memo(value)  # same cleaning as a memo (no control characters)
    if value is not None and len(value) > REFERENCE_MAX:
        raise InvalidInput(f"Référence trop longue ({REFERENCE_MAX} caractères au plus).")
    return value


def _new_short_code(conn: Connection) -> str:
    for _attempt in range(20):
        code = "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))
        if conn.execute(select(requests_t.c.id).where(requests_t.c.short_code == code)
                        ).first() is None:
            return code
    raise RuntimeError("no free short code after 20 draws")  # ~never: 887 million codes


def normalise_short_code(value: object) -> str:
    """What the customer typed, as stored: upper case, no spaces or dashes."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value.upper() if c.isalnum())[:SHORT_CODE_LENGTH + 4]


def party_id_of(conn: Connection, actor: Actor) -> int | None:
    """The acting user's party (the code is what every operation names it by)."""
    if actor.party_code is None:
        return None
    return conn.execute(select(parties_t.c.id)
                        .where(parties_t.c.code == actor.party_code)).scalar()


def _own_prestataire(conn: Connection, actor: Actor) -> Party:
    actor.require(Role.PRESTATAIRE)
    row = conn.execute(select(parties_t).where(parties_t.c.code == actor.party_code)).first()
    if row is None or row.kind != PartyKind.PRESTATAIRE:
        raise Forbidden()
    if row.status != "approved":
        raise FlowNotAllowed(f"Le prestataire {row.code} n'est pas agréé : il ne peut pas "
                             "être payé en Bou'Sol.")
    return row


def _insert(conn: Connection, actor: Actor, *, kind: str, payee_id: int,
            payer_id: int | None, amount_cents: int, reference: str | None,
            ttl: dt.timedelta) -> int:
    now = utcnow()
    return conn.execute(
        requests_t.insert().values(
            token=secrets.token_urlsafe(24), short_code=_new_short_code(conn), kind=kind,
            payee_party_id=payee_id, payer_party_id=payer_id, amount_cents=amount_cents,
            reference=reference, status=OPEN, created_at=now, created_by_user_id=actor.user_id,
            expires_at=now + ttl,
        ).returning(requests_t.c.id)
    ).scalar_one()


def create_till_request(
    uow: UnitOfWork, actor: Actor, *, amount: object, reference: object = None
) -> RequestView:
    """The merchant at the till asks for ``amount``; anyone with the link pays it."""
    amount_cents = money.parse_amount(amount)
    reference = _reference(reference)
    with uow:
        conn = uow.conn
        payee = _own_prestataire(conn, actor)
        minutes = int(settings.current(conn, ["payment_requests.ttl_minutes"])
                      ["payment_requests.ttl_minutes"])
        request_id = _insert(conn, actor, kind="till", payee_id=payee.id, payer_id=None,
                             amount_cents=amount_cents, reference=reference,
                             ttl=dt.timedelta(minutes=minutes))
        view = _view(conn, requests_t.c.id == request_id)
        uow.commit()
        return view


def create_invoice_request(
    uow: UnitOfWork, actor: Actor, *, customer_code: object, amount: object, reference: object
) -> RequestView:
    """B2B: a supplier asks a customer prestataire to pay an invoice (accept or decline).

    Refused with ``flow_not_allowed`` before the association opens the B2B phase, as
    the payment itself would be.
    """
    amount_cents = money.parse_amount(amount)
    reference = _reference(reference)
    if not reference:
        raise InvalidInput("La référence de la facture est obligatoire.")
    customer_code = inputs.party_code(customer_code)
    with uow:
        conn = uow.conn
        payee = _own_prestataire(conn, actor)
        customer = conn.execute(
            select(parties_t).where(parties_t.c.code == customer_code)).first()
        if customer is None:
            raise UnknownParty(f"Aucun adhérent ne porte le code {customer_code}.")
        if customer.id == payee.id:
            raise FlowNotAllowed("On ne s'envoie pas de facture à soi-même.")
        active = rules.active_phases(
            settings.current(conn, [f"phase.{p.value}" for p in rules.SWITCHABLE]))
        rules.check_flow(PartyKind(customer.kind), PartyKind.PRESTATAIRE, active)
        if customer.kind != PartyKind.PRESTATAIRE:
            raise FlowNotAllowed("Une demande de paiement de facture s'adresse à un prestataire.")
        days = int(settings.current(conn, ["payment_requests.invoice_ttl_days"])
                   ["payment_requests.invoice_ttl_days"])
        request_id = _insert(conn, actor, kind="invoice", payee_id=payee.id,
                             payer_id=customer.id, amount_cents=amount_cents,
                             reference=reference, ttl=dt.timedelta(days=days))
        view = _view(conn, requests_t.c.id == request_id)
        uow.commit()
        return view


# ---------------------------------------------------------------- reading


def _view(conn: Connection, condition) -> RequestView | None:
    payee, payer = aliased(parties_t), aliased(parties_t)
    row = conn.execute(
        select(requests_t, payee.c.code.label("payee_code"), payee.c.name.label("payee_name"),
               payer.c.code.label("payer_code"), payer.c.name.label("payer_name"))
        .select_from(
            requests_t.join(payee, payee.c.id == requests_t.c.payee_party_id)
            .outerjoin(payer, payer.c.id == _counterparty_id)
        )
        .where(condition)
    ).first()
    return _to_view(row) if row is not None else None


def _to_view(row) -> RequestView:
    return RequestView(
        id=row.id, token=row.token, short_code=row.short_code, kind=row.kind,
        amount_cents=row.amount_cents, reference=row.reference,
        status=effective_status(row.status, row.expires_at),
        created_at=as_utc(row.created_at), expires_at=as_utc(row.expires_at),
        payee_code=row.payee_code, payee_name=row.payee_name,
        payer_code=row.payer_code, payer_name=row.payer_name,
        paid_entry_id=row.paid_entry_id,
        closed_at=as_utc(row.closed_at) if row.closed_at else None,
        decline_reason=row.decline_reason,
    )


def by_token(conn: Connection, token: object) -> RequestView | None:
    if not isinstance(token, str) or not 10 <= len(token) <= 43:
        return None
    return _view(conn, requests_t.c.token == token)


def by_short_code(conn: Connection, code: object) -> RequestView | None:
    """A till request by the code shown at the till (an invoice goes to its addressee
    only: its short code opens nothing)."""
    code = normalise_short_code(code)
    if len(code) != SHORT_CODE_LENGTH:
        return None
    return _view(conn, (requests_t.c.short_code == code) & (requests_t.c.kind == "till"))


@dataclass(frozen=True)
class FixedQrPayee:
    """The prestataire its fixed QR code pays (shop window, counter): the payer types
    the amount."""

    code: str
    name: str
    filiere: str | None
    commune: str | None


def fixed_qr_payee(conn: Connection, code: object) -> FixedQrPayee | None:
    """The prestataire of this code if it is approved, else None: unknown, not a
    prestataire, or not (or no longer) approved are alike, as in the directory (nothing
    is said about who is not approved)."""
    if not isinstance(code, str) or len(code) > PARTY_CODE_MAX:
        return None
    row = conn.execute(
        select(parties_t.c.code, parties_t.c.name, parties_t.c.filiere, parties_t.c.commune)
        .where(parties_t.c.code == code, parties_t.c.kind == PartyKind.PRESTATAIRE.value,
               parties_t.c.status == ApprovalStatus.APPROVED.value)
    ).first()
    return FixedQrPayee(row.code, row.name, row.filiere, row.commune) if row else None


def for_payee(conn: Connection, party_id: int, request_id: int) -> RequestView | None:
    """A request of this prestataire's own (another's → None: not found)."""
    return _view(conn, (requests_t.c.id == request_id)
                 & (requests_t.c.payee_party_id == party_id))


def _list(conn: Connection, condition, limit: int) -> list[RequestView]:
    payee, payer = aliased(parties_t), aliased(parties_t)
    rows = conn.execute(
        select(requests_t, payee.c.code.label("payee_code"), payee.c.name.label("payee_name"),
               payer.c.code.label("payer_code"), payer.c.name.label("payer_name"))
        .select_from(
            requests_t.join(payee, payee.c.id == requests_t.c.payee_party_id)
            .outerjoin(payer, payer.c.id == _counterparty_id)
        )
        .where(condition)
        .order_by(requests_t.c.id.desc())
        .limit(limit)
    ).all()
    return [_to_view(row) for row in rows]


def sent_by(conn: Connection, party_id: int, *, limit: int = 30) -> list[RequestView]:
    return _list(conn, requests_t.c.payee_party_id == party_id, limit)


def addressed_to(conn: Connection, party_id: int, *, limit: int = 30) -> list[RequestView]:
    """Invoice requests sent to this customer prestataire, newest first."""
    return _list(conn, (requests_t.c.payer_party_id == party_id)
                 & (requests_t.c.kind == "invoice"), limit)


# ---------------------------------------------------------------- paying, declining


@dataclass(frozen=True)
class RequestPayment:
    request_id: int
    entry_id: int
    amount_cents: int
    payee_code: str
    payee_name: str
    balance_cents: int  # the payer's Bou'Sol balance after
    replayed: bool  # True: this payer had already paid it; nothing moved this time


def _locked_request(conn: Connection, token: object):
    if not isinstance(token, str) or not 10 <= len(token) <= 43:
        raise NotFound("Demande de paiement introuvable.")
    row = conn.execute(
        select(requests_t).where(requests_t.c.token == token).with_for_update()
    ).first()
    if row is None:
        raise NotFound("Demande de paiement introuvable.")
    return row


def _pay_locked(uow: UnitOfWork, actor: Actor, request) -> RequestPayment:
    """Pay the locked request ``request`` (see the module's docstring)."""
    conn = uow.conn
    party_id = party_id_of(conn, actor)
    payee = conn.execute(select(parties_t.c.code, parties_t.c.name)
                         .where(parties_t.c.id == request.payee_party_id)).one()
    if request.status == PAID and request.paid_by_party_id == party_id:
        balance = conn.execute(
            select(accounts_t.c.balance).where(
                accounts_t.c.party_id == party_id,
                accounts_t.c.currency == "BSOL",
                accounts_t.c.purpose == "main")).scalar_one()
        return RequestPayment(request.id, request.paid_entry_id, request.amount_cents,
                              payee.code, payee.name, balance, replayed=True)
    next_status(effective_status(request.status, request.expires_at), "pay")
    if request.payer_party_id is not None and request.payer_party_id != party_id:
        raise RequestNotForYou()
    result = operations.pay_within(
        uow, actor, payee_code=payee.code, amount_cents=request.amount_cents,
        memo=request.reference, details={"payment_request": request.id},
    )
    marked = conn.execute(
        update(requests_t)
        .where(requests_t.c.id == request.id, requests_t.c.status == OPEN)
        .values(status=PAID, paid_entry_id=result.entry_id, paid_by_party_id=party_id,
                closed_at=utcnow(), closed_by_user_id=actor.user_id)
    ).rowcount
    if marked != 1:  # cannot happen under the row lock; refuse rather than pay twice
        raise AlreadyPaid()
    return RequestPayment(request.id, result.entry_id, request.amount_cents, payee.code,
                          payee.name, result.balance_cents, replayed=False)


def pay(uow: UnitOfWork, actor: Actor, *, token: object) -> RequestPayment:
    """The actor's party pays the request named by its link's token, once."""
    if actor.party_code is None:
        raise Forbidden("Seul un adhérent titulaire d'un compte peut payer.")
    with uow:
        paid = _pay_locked(uow, actor, _locked_request(uow.conn, token))
        if not paid.replayed:
            uow.commit()
        return paid


def pay_by_id(uow: UnitOfWork, actor: Actor, *, request_id: object,
              idempotency_key: str | None = None) -> RequestPayment:
    """The same by the request's number (the JSON API), with an optional idempotency
    key: a repeat with the key returns the first outcome."""
    if actor.party_code is None:
        raise Forbidden("Seul un adhérent titulaire d'un compte peut payer.")
    request_id = inputs.database_id(request_id, NotFound("Demande de paiement introuvable."))

    def work(uow: UnitOfWork) -> RequestPayment:
        row = uow.conn.execute(select(requests_t).where(requests_t.c.id == request_id)
                               .with_for_update()).first()
        if row is None:
            raise NotFound("Demande de paiement introuvable.")
        return _pay_locked(uow, actor, row)

    return idempotency.run(uow, actor, idempotency_key,
                           {"op": "payment_request", "request": request_id},
                           RequestPayment, work)


def decline(uow: UnitOfWork, actor: Actor, *, token: object, reason: object = None
            ) -> RequestView:
    """The customer prestataire declines an invoice request addressed to it."""
    reason = inputs.memo(reason) if reason is not None else None
    with uow:
        conn = uow.conn
        request = _locked_request(conn, token)
        if request.payer_party_id is None or request.payer_party_id != party_id_of(conn, actor):
            raise RequestNotForYou("Seul le destinataire d'une facture peut la refuser.")
        _close(conn, actor, request, "decline", decline_reason=reason)
        view = _view(conn, requests_t.c.id == request.id)
        uow.commit()
        return view


def cancel(uow: UnitOfWork, actor: Actor, *, request_id: int) -> RequestView:
    """The merchant withdraws its own open request (wrong amount, customer gone)."""
    with uow:
        conn = uow.conn
        request = conn.execute(
            select(requests_t).where(requests_t.c.id == request_id,
                                     requests_t.c.payee_party_id == party_id_of(conn, actor))
            .with_for_update()
        ).first()
        if request is None or actor.role != Role.PRESTATAIRE:
            raise NotFound("Demande de paiement introuvable.")
        _close(conn, actor, request, "cancel")
        view = _view(conn, requests_t.c.id == request.id)
        uow.commit()
        return view


def _close(conn: Connection, actor: Actor, request, action: str, **values) -> None:
    status = next_status(effective_status(request.status, request.expires_at), action)
    conn.execute(
        update(requests_t).where(requests_t.c.id == request.id, requests_t.c.status == OPEN)
        .values(status=status, closed_at=utcnow(), closed_by_user_id=actor.user_id, **values)
    )


@dataclass(frozen=True)
class PayerReceipt:
    entry_id: int
    created_at: dt.datetime
    amount_cents: int  # what the payer paid (positive)
    payee_code: str
    payee_name: str
    memo: str | None
    balance_cents: int  # the payer's balance now
    request_short_code: str | None


def payer_receipt(conn: Connection, entry_id: int, party_id: int | None) -> PayerReceipt | None:
    """The payment ``entry_id`` as its payer sees it; None for anyone else."""
    accounts, entries, postings = Account.__table__, Entry.__table__, Posting.__table__
    if party_id is None:
        return None
    legs = conn.execute(
        select(postings.c.amount, accounts.c.party_id, entries.c.kind, entries.c.created_at,
               entries.c.memo)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .join(entries, entries.c.id == postings.c.entry_id)
        .where(postings.c.entry_id == entry_id)
    ).all()
    paid = [leg for leg in legs if leg.party_id == party_id and leg.amount < 0]
    received = [leg for leg in legs if leg.amount > 0]
    if not legs or legs[0].kind != "payment" or len(paid) != 1 or len(received) != 1:
        return None
    payee = conn.execute(select(parties_t.c.code, parties_t.c.name)
                         .where(parties_t.c.id == received[0].party_id)).one()
    balance = conn.execute(
        select(accounts.c.balance).where(accounts.c.party_id == party_id,
                                         accounts.c.currency == "BSOL",
                                         accounts.c.purpose == "main")).scalar_one()
    short_code = conn.execute(select(requests_t.c.short_code)
                              .where(requests_t.c.paid_entry_id == entry_id)).scalar()
    return PayerReceipt(entry_id, as_utc(legs[0].created_at), -paid[0].amount, payee.code,
                        payee.name, legs[0].memo, balance, short_code)
