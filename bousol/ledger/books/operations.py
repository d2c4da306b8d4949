"""The money operations. Each is one balanced journal entry in one unit of work.

Every operation takes plain values and the acting user, checks who may do it, and
accepts an optional idempotency key (see :mod:`bousol.ledger.kernel.idempotency`).
Amounts arrive as strings, ``int`` or ``Decimal`` and are parsed into cents here.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select

from bousol.ledger.books import rules
from bousol.ledger.books.posting import Leg, accounts_t, entries_t, lock_accounts, post, postings_t
from bousol.ledger.desk import closing
from bousol.ledger.kernel import idempotency, money, settings
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import (
    AlreadyReversed,
    BonusAdvanceExceeded,
    FlowNotAllowed,
    Forbidden,
    InvalidAmount,
    InvalidInput,
    NotReversible,
    UnknownAccount,
    UnknownEntry,
    UnknownParty,
)
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import (
    AidProgramme,
    CashClosing,
    NoteMove,
    Party,
    PartyKind,
    Payout,
    PayoutBatch,
    Refund,
    Role,
    SystemAccount,
)

MEMO_MAX = 500
ENTRY_ID_MAX = 2**63 - 1
_PARTY_CODE_RE = re.compile(r"[SPCBA]-[0-9]{6}")


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


def _memo(memo: str | None) -> str | None:
    if memo is None:
        return None
    if not isinstance(memo, str) or len(memo) > MEMO_MAX:
        raise InvalidInput(f"Libellé trop long (au plus {MEMO_MAX} caractères).")
    # No control characters (NUL is refused by PostgreSQL, kept by SQLite) and nothing
    # that cannot be written as UTF-8 (lone surrogates).
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in memo):
        raise InvalidInput("Le libellé contient des caractères non imprimables.")
    return memo.strip() or None


def _party_code(code: object) -> str:
    """A public party code (``S-000123``); anything else names nobody."""
    if not isinstance(code, str) or not _PARTY_CODE_RE.fullmatch(code):
        raise UnknownParty(f"Aucun adhérent ne porte le code {str(code)[:20]!r}.")
    return code


# ---------------------------------------------------------------- exchange


class ExchangeStatus(enum.StrEnum):
    """What became of an exchange: posted, or waiting for a second person."""

    POSTED = "posted"
    PENDING_APPROVAL = "pending_approval"


@dataclass(frozen=True)
class ExchangeResult:
    entry_id: int | None  # None while it waits for approval
    party_code: str
    euro_cents: int
    bousol_cents: int
    bonus_cents: int
    balance_cents: int  # the party's Bou'Sol balance after the exchange (or now, if pending)
    status: str = ExchangeStatus.POSTED.value
    approval_id: int | None = None  # the pending request (exchange_approvals)

    @property
    def pending(self) -> bool:
        return self.status == ExchangeStatus.PENDING_APPROVAL


def exchange(
    uow: UnitOfWork,
    actor: Actor,
    *,
    party_code: str,
    euros: object,
    tender: Tender | str = Tender.TRANSFER,
    memo: str | None = None,
    idempotency_key: str | None = None,
    programme_id: int | None = None,
) -> ExchangeResult:
    """Euros → Bou'Sols at 20 € = 21 B into a soliste's (or the CCAS's) account.

    One entry: the euros enter (outside → desk cash or reserve, by tender), the bonus
    fund pays the bonus into the reserve, and issuance credits the party with the
    Bou'Sols. When no subsidy has fed the bonus fund yet, the fund goes below zero: the
    association advances the bonus and owes it to the reserve until a subsidy arrives.

    The CCAS funding an aid programme (``programme_id``) gets the Bou'Sols in the
    programme's account. Whether the bonus applies to the CCAS is the setting
    ``ccas.bonus`` (on by default); without it, 20 € buy 20 B.

    Above the approval thresholds (per operation, per member and day), nothing moves:
    the result is ``pending_approval`` with the request's id, which a second person
    approves (:mod:`bousol.ledger.desk.exchange_approvals`). A replayed key answers the same.
    """
    actor.require(Role.BANK, Role.ADMIN)
    euro_cents = money.parse_amount(euros)
    party_code = _party_code(party_code)
    tender = parse_tender(tender)
    memo = _memo(memo)
    if programme_id is not None and (isinstance(programme_id, bool)
                                     or not isinstance(programme_id, int)
                                     or not 0 < programme_id < 2**31):
        raise UnknownAccount("Programme d'aide inconnu.")
    request = {"op": "exchange", "party": party_code, "euros": euro_cents,
               "tender": tender.value, "memo": memo}
    if programme_id is not None:
        request["programme"] = programme_id

    def work(uow: UnitOfWork) -> ExchangeResult:
        return exchange_within(uow, actor, party_code=party_code, euro_cents=euro_cents,
                               tender=tender, memo=memo, programme_id=programme_id)

    return idempotency.run(uow, actor, idempotency_key, request, ExchangeResult, work)


def exchange_within(
    uow: UnitOfWork, actor: Actor, *, party_code: str, euro_cents: int, tender: Tender,
    memo: str | None, programme_id: int | None, approval=None,
) -> ExchangeResult:
    """The exchange itself, inside a unit of work the caller holds open. ``approval``:
    the locked row of the request being approved (the thresholds are then behind it;
    the entry is the asking clerk's, its details name the request and the approver)."""
    from bousol.ledger.desk import exchange_approvals  # it calls back into this module

    into = _TENDER_ACCOUNT[tender]
    programme = _programme_account(uow.conn, programme_id, party_code)
    target_id = programme.account_id if programme else None
    locked = lock_accounts(
        uow.conn,
        system=(SystemAccount.EUR_OUTSIDE, into, SystemAccount.EUR_RESERVE,
                SystemAccount.BONUS_FUND, SystemAccount.ISSUANCE),
        party_codes=(party_code,),
        account_ids=(target_id,) if target_id else (),
    )
    if tender is not Tender.TRANSFER:  # the drawer or the terminal: counted at closing
        closing.ensure_desk_open(uow.conn)  # after the lock: sees a closing just made
    party = locked.party(party_code)
    if party.party_kind not in (PartyKind.SOLISTE, PartyKind.CCAS):
        raise FlowNotAllowed(
            "Le change d'euros en Bou'Sols est réservé aux solistes et au CCAS ; "
            "un prestataire reçoit ses Bou'Sols de ses clients."
        )
    target = next(r for r in locked.rows if r.id == target_id) if target_id else party
    if programme is not None:
        _check_budget(uow.conn, programme, euro_cents)
    bousol_cents, bonus_cents = money.bousols_for_euros(euro_cents)
    rate = f"{money.RATE_EUR}:{money.RATE_BSOL}"
    if party.party_kind == PartyKind.CCAS and settings.current(
            uow.conn, ["ccas.bonus"])["ccas.bonus"] == "off":
        bousol_cents, bonus_cents, rate = euro_cents, 0, "1:1"
    # Under the system accounts' locks (every exchange takes them): the day's total
    # cannot change between this check and the request or the entry.
    rule = None if approval is not None else exchange_approvals.rule_for(
        uow.conn, party.party_id, euro_cents)
    if rule is not None:
        approval_id = exchange_approvals.record(
            uow.conn, actor, party_id=party.party_id, euro_cents=euro_cents,
            tender=tender.value, programme_id=programme_id, memo=memo, rule=rule)
        return ExchangeResult(None, party_code, euro_cents, bousol_cents, bonus_cents,
                              target.balance, ExchangeStatus.PENDING_APPROVAL.value,
                              approval_id)
    legs = [
        Leg(locked.system(SystemAccount.EUR_OUTSIDE), -euro_cents),
        Leg(locked.system(into), euro_cents),
        Leg(locked.system(SystemAccount.ISSUANCE), -bousol_cents),
        Leg(target, bousol_cents),
    ]
    if bonus_cents:
        check_bonus_advance(uow.conn, locked.system(SystemAccount.BONUS_FUND).balance,
                            bonus_cents)
        legs += [
            Leg(locked.system(SystemAccount.BONUS_FUND), -bonus_cents),
            Leg(locked.system(SystemAccount.EUR_RESERVE), bonus_cents),
        ]
    details = {"tender": tender.value, "rate": rate}
    if programme_id is not None:
        details["programme"] = programme_id
    author = actor.user_id
    if approval is not None:
        details.update(approval=approval.id, approved_by=actor.user_id)
        author = approval.requested_by_user_id
    entry_id = post(uow.conn, kind="exchange", legs=legs, actor_user_id=author,
                    memo=memo, details=details)
    return ExchangeResult(entry_id, party_code, euro_cents, bousol_cents, bonus_cents,
                          target.balance + bousol_cents)


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


def _programme_account(conn, programme_id: int | None, party_code: str):
    """The CCAS's aid programme an exchange funds (its account, its budget), or None."""
    if programme_id is None:
        return None
    programmes, parties = AidProgramme.__table__, Party.__table__
    row = conn.execute(
        select(programmes.c.account_id, programmes.c.budget_eur_cents, parties.c.code)
        .join(parties, parties.c.id == programmes.c.ccas_party_id)
        .where(programmes.c.id == programme_id)
    ).first()
    if row is None or row.code != party_code:
        raise UnknownAccount("Programme d'aide inconnu pour cet adhérent.")
    return row


def _check_budget(conn, programme, euro_cents: int) -> None:
    """A programme is funded up to its euro budget (under the account's lock: two
    fundings at once are serialised by it)."""
    funded = conn.execute(
        select(func.coalesce(func.sum(postings_t.c.amount), 0))
        .select_from(postings_t.join(accounts_t, accounts_t.c.id == postings_t.c.account_id))
        .where(accounts_t.c.system_code == SystemAccount.EUR_OUTSIDE.value,
               postings_t.c.entry_id.in_(
                   select(postings_t.c.entry_id)
                   .where(postings_t.c.account_id == programme.account_id)))
    ).scalar_one()
    already = -int(funded)  # euros let in by the entries that touched the programme
    if already + euro_cents > programme.budget_eur_cents:
        left = max(programme.budget_eur_cents - already, 0)
        raise InvalidAmount(f"Le programme a un budget de "
                            f"{money.format_fr(programme.budget_eur_cents, '€')} ; "
                            f"il reste {money.format_fr(left, '€')} à financer.")


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
    payee_code = _party_code(payee_code)
    memo = _memo(memo)
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
    prestataire_code = _party_code(prestataire_code)
    memo = _memo(memo)
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
    memo = _memo(memo)
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

# Entries whose effects are not only postings: negating the postings alone would leave
# the rest (a paid transfer file, a counted drawer) telling another story.
_NOT_REVERSIBLE_KINDS = {
    "payout": "Un virement payé ne se contre-passe pas : un virement rejeté par la banque "
              "s'enregistre comme une opération à part.",
    "cash_discrepancy": "Une clôture de caisse ne se modifie pas.",
    # A refund counts against its payment's refundable amount: undoing it would let the
    # merchant refund the same Bou'Sols twice. The customer pays again instead.
    "refund": "Un remboursement ne se contre-passe pas : le client paie à nouveau.",
    # A voucher's entries follow its state (remaining, status): the CCAS cancels an
    # open voucher instead; a redemption is corrected by the merchant's refund-free
    # new operation with the CCAS.
    "voucher_grant": "Un bon d'aide attribué ne se contre-passe pas : annulez le bon.",
    "voucher_redemption": "Un bon d'aide encaissé ne se contre-passe pas.",
    "voucher_expiry": "L'expiration d'un bon d'aide ne se contre-passe pas.",
    "voucher_cancellation": "L'annulation d'un bon d'aide ne se contre-passe pas.",
}


def _check_reversible(conn, entry_id: int, kind: str) -> None:
    if kind in _NOT_REVERSIBLE_KINDS:
        raise NotReversible(_NOT_REVERSIBLE_KINDS[kind])
    moves = NoteMove.__table__
    if conn.execute(select(moves.c.id).where(moves.c.entry_id == entry_id).limit(1)).first():
        # The notes moved with the entry: the clerk makes the inverse operation with the
        # paper in hand (a deposit, a new exchange), so the stock follows the books.
        raise NotReversible("Cette opération a déplacé des billets : faites l'opération "
                            "inverse au comptoir, billets en main, plutôt qu'une "
                            "contre-passation.")
    closings = CashClosing.__table__
    if conn.execute(select(closings.c.id)
                    .where(closings.c.deposit_entry_id == entry_id).limit(1)).first():
        raise NotReversible("Une clôture de caisse ne se modifie pas.")


def _check_not_in_open_batch(conn, legs_of) -> None:
    """Euros owed that sit in an open transfer file may already be at the bank: the
    entry that owed them cannot be undone until the batch is paid or cancelled. Checked
    under the account locks, which preparing a batch takes too."""
    batches, payouts = PayoutBatch.__table__, Payout.__table__
    found = conn.execute(
        select(payouts.c.id)
        .select_from(payouts.join(batches, batches.c.id == payouts.c.batch_id)
                     .join(accounts_t, (accounts_t.c.party_id == payouts.c.party_id)
                           & (accounts_t.c.currency == "EUR")))
        .where(batches.c.status == "open",
               accounts_t.c.id.in_([leg.account_id for leg in legs_of]))
        .limit(1)
    ).first()
    if found is not None:
        raise NotReversible("Les euros dus de cette opération sont dans un lot de virements "
                            "ouvert : payez ou annulez le lot d'abord.")


def _check_not_refunded(conn, entry_id: int) -> None:
    """Checked under the account locks, which a refund of the same payment takes too."""
    refunds = Refund.__table__
    if conn.execute(select(refunds.c.id)
                    .where(refunds.c.payment_entry_id == entry_id).limit(1)).first():
        raise NotReversible("Ce paiement a déjà été remboursé en partie ou en totalité : "
                            "remboursez le reste plutôt que de contre-passer.")


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
    itself cannot be reversed (make a new operation instead).
    """
    actor.require(Role.BANK, Role.ADMIN)
    if (isinstance(entry_id, bool) or not isinstance(entry_id, int)
            or not 0 < entry_id <= ENTRY_ID_MAX):
        raise InvalidInput("Numéro d'écriture invalide.")
    memo = _memo(memo)
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
        _check_reversible(conn, entry_id, original.kind)
        legs_of = conn.execute(
            select(postings_t.c.account_id, postings_t.c.amount)
            .where(postings_t.c.entry_id == entry_id)
            .order_by(postings_t.c.id)
        ).all()
        locked = lock_accounts(conn, account_ids=tuple({leg.account_id for leg in legs_of}))
        _check_not_in_open_batch(conn, legs_of)
        _check_not_refunded(conn, entry_id)
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
