"""The money operations. Each is one balanced journal entry in one unit of work.

Every operation takes plain values and the acting user, checks who may do it, and
accepts an optional idempotency key (see :mod:`bousol.ledger.kernel.idempotency`).
Amounts arrive as strings, ``int`` or ``Decimal`` and are parsed into cents here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select

from bousol.ledger.books import hooks, rules
from bousol.ledger.books.models import PartyKind, SystemAccount
from bousol.ledger.books.posting import Leg, entries_t, lock_accounts, post, postings_t
from bousol.ledger.kernel import idempotency, inputs, money, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import (
    AlreadyReversed,
    BonusAdvanceExceeded,
    FlowNotAllowed,
    Forbidden,
    InvalidAmount,
    InvalidInput,
    NotReversible,
    UnknownEntry,
)
from bousol.ledger.kernel.uow import UnitOfWork


class Tender(enum.StrEnum):
    """How the euros of an exchange arrive."""

    CASH = "cash"  # into the desk's drawer, banked at the day's closing
    CHEQUE = "cheque"  # into the drawer too, until the cheques are banked
    CARD = "card"  # settled by the bank straight into the reserve
    TRANSFER = "transfer"  # a bank transfer (the CCAS funding its aid, scripts)


_TENDER_ACCOUNT = {
    Tender.CASH: SystemAccount.DESK_CASH,
    Tender.CHEQUE: SystemAccount.DESK_CASH,
    Tender.CARD: SystemAccount.EUR_RESERVE,
    Tender.TRANSFER: SystemAccount.EUR_RESERVE,
}


def parse_tender(value: object) -> Tender:
    try:
        return Tender(value)
    except ValueError:
        raise InvalidInput("Moyen de paiement inconnu.") from None


def check_bonus_advance(conn, fund_balance: int, bonus_cents: int) -> None:
    """The association advances the bonus while no subsidy covers it, up to the
    setting ``exchange.bonus_advance_max_cents``: past it, ``bonus_advance_exceeded``
    (checked under the bonus fund's lock, so two exchanges at once cannot both pass)."""
    ceiling = int(settings.current(conn, ["exchange.bonus_advance_max_cents"])
                  ["exchange.bonus_advance_max_cents"])
    if fund_balance - bonus_cents < -ceiling:
        left = max(fund_balance + ceiling, 0)
        raise BonusAdvanceExceeded(
            f"Le fonds de bonification a atteint son avance maximale "
            f"({money.format_fr(ceiling, '€')}) : il peut encore avancer "
            f"{money.format_fr(left, '€')} de bonification. Enregistrez une subvention "
            f"avant ce change.", ceiling_cents=ceiling, available_cents=left)


# ---------------------------------------------------------------- payment


@dataclass(frozen=True)
class PaymentResult:
    entry_id: int
    payer_code: str
    payee_code: str
    amount_cents: int
    balance_cents: int  # the payer's balance after


def pay(
    uow: UnitOfWork,
    actor: Actor,
    *,
    payee_code: str,
    amount: object,
    memo: str | None = None,
    idempotency_key: str | None = None,
) -> PaymentResult:
    """The actor's party pays ``payee_code``, if the flow rules of the phase allow it."""
    if actor.party_code is None:
        raise Forbidden("Seul un adhérent titulaire d'un compte peut payer.")
    amount_cents = money.parse_amount(amount)
    payee_code = inputs.party_code(payee_code)
    memo = inputs.memo(memo)
    payer_code = actor.party_code
    request = {"op": "payment", "payer": payer_code, "payee": payee_code,
               "amount": amount_cents, "memo": memo}

    def work(uow: UnitOfWork) -> PaymentResult:
        return pay_within(uow, actor, payee_code=payee_code, amount_cents=amount_cents,
                          memo=memo)

    return idempotency.run(uow, actor, idempotency_key, request, PaymentResult, work)


def pay_within(
    uow: UnitOfWork, actor: Actor, *, payee_code: str, amount_cents: int,
    memo: str | None, details: dict | None = None,
) -> PaymentResult:
    """The payment itself, inside a unit of work the caller holds open (a payment
    request pays through it, in the same transaction that marks the request paid)."""
    payer_code = actor.party_code
    if payer_code is None:
        raise Forbidden("Seul un adhérent titulaire d'un compte peut payer.")
    if payee_code == payer_code:
        raise FlowNotAllowed("On ne se paie pas soi-même.")
    locked = lock_accounts(uow.conn, party_codes=(payer_code, payee_code))
    payer, payee = locked.party(payer_code), locked.party(payee_code)
    payer_kind, payee_kind = PartyKind(payer.party_kind), PartyKind(payee.party_kind)
    active = rules.ALWAYS_ON
    if rules.needs_phase_lookup(payer_kind, payee_kind):
        active = rules.active_phases(
            settings.current(uow.conn, [f"phase.{p.value}" for p in rules.SWITCHABLE])
        )
    rules.check_flow(payer_kind, payee_kind, active)
    for side, who in (("payee", payee), ("payer", payer)):
        if who.party_kind == PartyKind.PRESTATAIRE and who.party_status != "approved":
            raise FlowNotAllowed(
                f"Le prestataire {who.party_code} n'est pas agréé : "
                + ("il ne peut pas être payé en Bou'Sol." if side == "payee"
                   else "il ne peut pas payer en Bou'Sol.")
            )
    entry_id = post(
        uow.conn, kind="payment",
        legs=[Leg(payer, -amount_cents), Leg(payee, amount_cents)],
        actor_user_id=actor.user_id, memo=memo, details=details,
    )
    return PaymentResult(entry_id, payer_code, payee_code, amount_cents,
                         payer.balance - amount_cents)


# ---------------------------------------------------------------- reconversion


@dataclass(frozen=True)
class ReconversionResult:
    entry_id: int
    prestataire_code: str
    bousol_cents: int
    fee_cents: int
    euro_cents: int  # paid out to the prestataire
    balance_cents: int  # the prestataire's Bou'Sol balance after


def reconversion_fee_bp(conn) -> int:
    """The reconversion fee in force, in basis points (500 = 5 %)."""
    return int(settings.current(conn, ["reconversion.fee_bp"])["reconversion.fee_bp"])


def reconvert(
    uow: UnitOfWork,
    actor: Actor,
    *,
    prestataire_code: str,
    bousols: object,
    memo: str | None = None,
    idempotency_key: str | None = None,
) -> ReconversionResult:
    """A prestataire's Bou'Sols back to euros, less the fee (5 % by default).

    The Bou'Sols return to issuance (destroyed); the reserve pays the euros into the
    prestataire's euro account (what the bank owes it, until the transfer pays it out)
    and the fee to the association's income. Refused with ``reserve_insufficient`` if
    the reserve (not counting desk cash not yet banked) cannot pay.
    """
    actor.require(Role.BANK, Role.ADMIN)
    bousol_cents = money.parse_amount(bousols)
    prestataire_code = inputs.party_code(prestataire_code)
    memo = inputs.memo(memo)
    request = {"op": "reconversion", "prestataire": prestataire_code,
               "bousols": bousol_cents, "memo": memo}

    def work(uow: UnitOfWork) -> ReconversionResult:
        return reconvert_within(uow, actor, prestataire_code=prestataire_code,
                                bousol_cents=bousol_cents, memo=memo)

    return idempotency.run(uow, actor, idempotency_key, request, ReconversionResult, work)


def reconvert_within(
    uow: UnitOfWork, actor: Actor, *, prestataire_code: str, bousol_cents: int,
    memo: str | None,
) -> ReconversionResult:
    """The reconversion itself, inside a unit of work the caller holds open (a
    reconversion request is executed through it, in the transaction that marks it)."""
    actor.require(Role.BANK, Role.ADMIN)
    fee_bp = reconversion_fee_bp(uow.conn)
    fee_cents = money.fee_for(bousol_cents, fee_bp)
    euro_cents = bousol_cents - fee_cents
    if euro_cents <= 0:
        raise InvalidAmount("Montant trop petit : la commission absorberait tout.")
    locked = lock_accounts(
        uow.conn,
        system=(SystemAccount.ISSUANCE, SystemAccount.EUR_RESERVE,
                SystemAccount.FEES_INCOME),
        party_codes=(prestataire_code,),
        currencies=("BSOL", "EUR"),
    )
    prestataire = locked.party(prestataire_code)
    if prestataire.party_kind != PartyKind.PRESTATAIRE:
        raise FlowNotAllowed("Seul un prestataire reconvertit ses Bou'Sols en euros.")
    legs = [
        Leg(prestataire, -bousol_cents),
        Leg(locked.system(SystemAccount.ISSUANCE), bousol_cents),
        Leg(locked.system(SystemAccount.EUR_RESERVE), -bousol_cents),
        Leg(locked.party(prestataire_code, "EUR"), euro_cents),
    ]
    if fee_cents:
        legs.append(Leg(locked.system(SystemAccount.FEES_INCOME), fee_cents))
    entry_id = post(
        uow.conn, kind="reconversion", legs=legs, actor_user_id=actor.user_id, memo=memo,
        details={"fee_bp": fee_bp},
    )
    return ReconversionResult(entry_id, prestataire_code, bousol_cents, fee_cents,
                              euro_cents, prestataire.balance - bousol_cents)


# ---------------------------------------------------------------- bank's own euro moves


@dataclass(frozen=True)
class TransferResult:
    entry_id: int
    euro_cents: int
    source_cents: int  # the account the euros left, after
    target_cents: int  # the account they went to, after


def _system_transfer(
    uow: UnitOfWork, actor: Actor, *, kind: str, source: SystemAccount,
    target: SystemAccount, euros: object, memo: str | None, idempotency_key: str | None,
) -> TransferResult:
    """Euros from one of the bank's or the association's accounts to another."""
    actor.require(Role.BANK, Role.ADMIN)
    euro_cents = money.parse_amount(euros)
    memo = inputs.memo(memo)
    request = {"op": kind, "euros": euro_cents, "memo": memo}

    def work(uow: UnitOfWork) -> TransferResult:
        locked = lock_accounts(uow.conn, system=(source, target))
        src, dst = locked.system(source), locked.system(target)
        entry_id = post(
            uow.conn, kind=kind, legs=[Leg(src, -euro_cents), Leg(dst, euro_cents)],
            actor_user_id=actor.user_id, memo=memo,
        )
        return TransferResult(entry_id, euro_cents, src.balance - euro_cents,
                              dst.balance + euro_cents)

    return idempotency.run(uow, actor, idempotency_key, request, TransferResult, work)


def record_subsidy(
    uow: UnitOfWork, actor: Actor, *, euros: object, memo: str | None = None,
    idempotency_key: str | None = None,
) -> TransferResult:
    """A partner's subsidy received into the bonus fund, which backs the 5 % bonus."""
    return _system_transfer(
        uow, actor, kind="subsidy", source=SystemAccount.EUR_OUTSIDE,
        target=SystemAccount.BONUS_FUND, euros=euros, memo=memo,
        idempotency_key=idempotency_key,
    )


def bank_desk_cash(
    uow: UnitOfWork, actor: Actor, *, euros: object, memo: str | None = None,
    idempotency_key: str | None = None,
) -> TransferResult:
    """Cash and cheques taken at the desk handed to the reserve (remise en banque).

    Only then can they pay reconversions. Refused with ``desk_cash_insufficient`` when
    the drawer does not hold that much.
    """
    return _system_transfer(
        uow, actor, kind="cash_deposit", source=SystemAccount.DESK_CASH,
        target=SystemAccount.EUR_RESERVE, euros=euros, memo=memo,
        idempotency_key=idempotency_key,
    )


# ---------------------------------------------------------------- reversal

@dataclass(frozen=True)
class ReversalResult:
    entry_id: int
    reversed_entry_id: int


def reverse(
    uow: UnitOfWork,
    actor: Actor,
    *,
    entry_id: int,
    memo: str | None = None,
    idempotency_key: str | None = None,
) -> ReversalResult:
    """Correct an entry with a new one that negates each of its postings, once.

    The reversal obeys the same limits as any entry: reversing an exchange whose
    Bou'Sols were already spent is refused with ``insufficient_funds``. A reversal
    itself cannot be reversed (make a new operation instead). What the domains forbid
    (an entry that moved notes, a paid transfer, a refunded payment…) they registered
    with :mod:`bousol.ledger.books.hooks`.
    """
    actor.require(Role.BANK, Role.ADMIN)
    hooks.require_loaded()
    entry_id = inputs.database_id(entry_id, InvalidInput("Numéro d'écriture invalide."),
                                  maximum=inputs.BIGINT_ID_MAX)
    memo = inputs.memo(memo)
    request = {"op": "reversal", "entry": entry_id, "memo": memo}

    def work(uow: UnitOfWork) -> ReversalResult:
        conn = uow.conn
        original = conn.execute(
            select(entries_t.c.id, entries_t.c.kind).where(entries_t.c.id == entry_id)
        ).first()
        if original is None:
            raise UnknownEntry()
        if original.kind == "reversal":
            raise NotReversible()
        reason = hooks.irreversible_reason(original.kind)
        if reason is not None:
            raise NotReversible(reason)
        for guard in hooks.guards(under_locks=False):
            guard(conn, hooks.ReversalCandidate(entry_id, original.kind, ()))
        legs_of = conn.execute(
            select(postings_t.c.account_id, postings_t.c.amount)
            .where(postings_t.c.entry_id == entry_id)
            .order_by(postings_t.c.id)
        ).all()
        locked = lock_accounts(conn, account_ids=tuple({leg.account_id for leg in legs_of}))
        candidate = hooks.ReversalCandidate(
            entry_id, original.kind, tuple(leg.account_id for leg in legs_of))
        for guard in hooks.guards(under_locks=True):
            guard(conn, candidate)
        # Checked under the account locks: a concurrent reversal of the same entry
        # waits here, then sees this one (and the unique reverses_id backs it anyway).
        already = conn.execute(
            select(entries_t.c.id).where(entries_t.c.reverses_id == entry_id)
        ).first()
        if already is not None:
            raise AlreadyReversed(reversal=already.id)
        by_id = {row.id: row for row in locked.rows}
        reversal_id = post(
            conn, kind="reversal",
            legs=[Leg(by_id[leg.account_id], -leg.amount) for leg in legs_of],
            actor_user_id=actor.user_id, memo=memo or f"Contre-passation de l'écriture {entry_id}",
            reverses_id=entry_id,
        )
        return ReversalResult(reversal_id, entry_id)

    return idempotency.run(uow, actor, idempotency_key, request, ReversalResult, work)
