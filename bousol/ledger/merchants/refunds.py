"""Refunds: a merchant gives back all or part of a payment it received.

A refund is a new entry (kind ``refund``), never an edit of the payment: the merchant's
Bou'Sols go back to the account that paid, and a ``refunds`` row links the two entries.
Rules (docs/payments.md):
- only the prestataire that received the payment refunds it, from its own balance
  (``insufficient_funds`` otherwise), suspended or not (giving back is always allowed);
- within ``refunds.max_days`` days of the payment (``refund_period_over``);
- the refunds of one payment never add up to more than it (``refund_exceeds_payment``):
  the sum is read under the locks of both accounts, which a concurrent refund of the
  same payment takes too, so two tills refunding at once cannot exceed it;
- a payment that was reversed cannot be refunded, and a refunded one cannot be
  reversed (operations.reverse); a refund itself is not reversible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, insert, select

from bousol.ledger.books import hooks
from bousol.ledger.books.models import Party
from bousol.ledger.books.posting import Leg, accounts_t, entries_t, lock_accounts, post, postings_t
from bousol.ledger.kernel import idempotency, inputs, money, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import (
    InvalidInput,
    NotFound,
    NotRefundable,
    NotReversible,
    RefundExceedsPayment,
    RefundPeriodOver,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants.models import Refund
from bousol.ledger.merchants.payment_requests import party_id_of

refunds_t = Refund.__table__


@dataclass(frozen=True)
class RefundResult:
    entry_id: int
    payment_entry_id: int
    amount_cents: int
    refunded_cents: int  # all refunds of the payment, this one included
    remaining_cents: int  # what can still be refunded
    balance_cents: int  # the merchant's Bou'Sol balance after


@dataclass(frozen=True)
class Refundable:
    """A payment as the merchant sees it before refunding."""

    entry_id: int
    created_at: dt.datetime
    amount_cents: int
    payer_code: str
    payer_name: str
    memo: str | None
    refunded_cents: int
    remaining_cents: int
    refundable_until: dt.datetime
    reversed: bool


def _payment_legs(conn, payment_entry_id: int, party_id: int):
    """(payee posting, payer posting) of a payment to ``party_id``, or NotFound."""
    entry = conn.execute(
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo)
        .where(entries_t.c.id == payment_entry_id)
    ).first()
    if entry is None or entry.kind != "payment":
        raise NotFound("Paiement introuvable.")
    legs = conn.execute(
        select(postings_t.c.account_id, postings_t.c.amount, accounts_t.c.party_id)
        .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        .where(postings_t.c.entry_id == payment_entry_id)
    ).all()
    received = [leg for leg in legs if leg.amount > 0 and leg.party_id == party_id]
    paid = [leg for leg in legs if leg.amount < 0]
    if len(received) != 1 or len(paid) != 1:
        raise NotFound("Paiement introuvable.")  # not a payment to this merchant
    return entry, received[0], paid[0]


def _refunded(conn, payment_entry_id: int) -> int:
    return int(conn.execute(
        select(func.coalesce(func.sum(refunds_t.c.amount_cents), 0))
        .where(refunds_t.c.payment_entry_id == payment_entry_id)
    ).scalar_one())


def _max_days(conn) -> int:
    return int(settings.current(conn, ["refunds.max_days"])["refunds.max_days"])


def refundable(conn, actor: Actor, payment_entry_id: int) -> Refundable:
    """What the merchant may refund of this payment (read only; the refund rechecks)."""
    actor.require(Role.PRESTATAIRE)
    entry, received, paid = _payment_legs(conn, payment_entry_id, party_id_of(conn, actor))
    payer = conn.execute(
        select(Party.__table__.c.code, Party.__table__.c.name)
        .where(Party.__table__.c.id == paid.party_id)
    ).one()
    refunded = _refunded(conn, payment_entry_id)
    reversed_ = conn.execute(select(entries_t.c.id)
                             .where(entries_t.c.reverses_id == payment_entry_id)).first()
    created_at = as_utc(entry.created_at)
    return Refundable(
        entry_id=entry.id, created_at=created_at, amount_cents=received.amount,
        payer_code=payer.code, payer_name=payer.name, memo=entry.memo,
        refunded_cents=refunded, remaining_cents=received.amount - refunded,
        refundable_until=created_at + dt.timedelta(days=_max_days(conn)),
        reversed=reversed_ is not None,
    )


def refund(
    uow: UnitOfWork,
    actor: Actor,
    *,
    payment_entry_id: object,
    amount: object,
    memo: str | None = None,
    idempotency_key: str | None = None,
) -> RefundResult:
    """The merchant gives back ``amount`` of a payment it received (see module doc)."""
    actor.require(Role.PRESTATAIRE)
    payment_entry_id = inputs.database_id(
        payment_entry_id, InvalidInput("Numéro de paiement invalide."),
        maximum=inputs.BIGINT_ID_MAX)
    amount_cents = money.parse_amount(amount)
    memo = inputs.memo(memo)
    request = {"op": "refund", "payment": payment_entry_id, "amount": amount_cents,
               "memo": memo}

    def work(uow: UnitOfWork) -> RefundResult:
        conn = uow.conn
        entry, received, paid = _payment_legs(conn, payment_entry_id, party_id_of(conn, actor))
        locked = lock_accounts(conn, account_ids=(received.account_id, paid.account_id))
        by_id = {row.id: row for row in locked.rows}
        # Under the locks: a concurrent refund or reversal of this payment waits above.
        if conn.execute(select(entries_t.c.id)
                        .where(entries_t.c.reverses_id == payment_entry_id)).first():
            raise NotRefundable("Ce paiement a été contre-passé : il n'y a plus rien à "
                                "rembourser.")
        if utcnow() > as_utc(entry.created_at) + dt.timedelta(days=_max_days(conn)):
            raise RefundPeriodOver()
        refunded = _refunded(conn, payment_entry_id)
        if amount_cents > received.amount - refunded:
            raise RefundExceedsPayment(
                "Le remboursement dépasse ce qui reste à rembourser sur ce paiement : "
                f"{money.format_fr(received.amount - refunded, 'B')} au plus.")
        merchant, customer = by_id[received.account_id], by_id[paid.account_id]
        entry_id = post(
            conn, kind="refund",
            legs=[Leg(merchant, -amount_cents), Leg(customer, amount_cents)],
            actor_user_id=actor.user_id,
            memo=memo or f"Remboursement du paiement {payment_entry_id}",
            details={"refund_of": payment_entry_id},
        )
        conn.execute(insert(refunds_t).values(
            payment_entry_id=payment_entry_id, refund_entry_id=entry_id,
            amount_cents=amount_cents, created_at=utcnow()))
        total = refunded + amount_cents
        return RefundResult(entry_id, payment_entry_id, amount_cents, total,
                            received.amount - total, merchant.balance - amount_cents)

    return idempotency.run(uow, actor, idempotency_key, request, RefundResult, work)


def refunds_of(conn, payment_entry_id: int) -> list:
    return conn.execute(
        select(refunds_t.c.refund_entry_id, refunds_t.c.amount_cents, refunds_t.c.created_at)
        .where(refunds_t.c.payment_entry_id == payment_entry_id)
        .order_by(refunds_t.c.id)
    ).all()


# ---------------------------------------------------------------- what the books consult


def _refuse_reversal_of_a_refunded_payment(conn, candidate: hooks.ReversalCandidate) -> None:
    """Checked under the account locks, which a refund of the same payment takes too."""
    refunds = Refund.__table__
    if conn.execute(select(refunds.c.id)
                    .where(refunds.c.payment_entry_id == candidate.entry_id).limit(1)).first():
        raise NotReversible("Ce paiement a déjà été remboursé en partie ou en totalité : "
                            "remboursez le reste plutôt que de contre-passer.")


# A refund counts against its payment's refundable amount: undoing it would let the
# merchant refund the same Bou'Sols twice. The customer pays again instead.
hooks.irreversible_kind(
    "refund", "Un remboursement ne se contre-passe pas : le client paie à nouveau.")
hooks.reversal_guard(_refuse_reversal_of_a_refunded_payment, under_locks=True)
