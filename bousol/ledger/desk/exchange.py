"""Euros into Bou'Sols at the desk: 20 € = 21 B, one balanced entry per exchange.

The exchange is the desk's: it checks that the day is open for cash, sends the large
ones to a second person (:mod:`bousol.ledger.desk.exchange_approvals`), and funds the
CCAS's aid programmes (the one place the desk reads the CCAS's tables: a named exception
in the import contracts, ``pyproject.toml``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import func, select

from bousol.ledger.books import rules  # noqa: F401
from bousol.ledger.books.models import Party, PartyKind, SystemAccount
from bousol.ledger.books.operations import (
    _TENDER_ACCOUNT,
    Tender,
    check_bonus_advance,
    parse_tender,
)
from bousol.ledger.books.posting import Leg, accounts_t, lock_accounts, post, postings_t
from bousol.ledger.ccas.models import AidProgramme
from bousol.ledger.desk import bonus, closing, exchange_limits
from bousol.ledger.kernel import idempotency, inputs, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import FlowNotAllowed, InvalidAmount, UnknownAccount
from bousol.ledger.kernel.uow import UnitOfWork


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
    party_code = inputs.party_code(party_code)
    tender = parse_tender(tender)
    memo = inputs.memo(memo)
    if programme_id is not None:
        programme_id = inputs.database_id(programme_id,
                                          UnknownAccount("Programme d'aide inconnu."))
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
    got = bonus.for_exchange(uow.conn, party.party_kind, euro_cents)  # the CCAS: ccas.bonus
    bousol_cents, bonus_cents, rate = got.bousol_cents, got.bonus_cents, got.rate
    # Under the system accounts' locks (every exchange takes them): the day's total
    # cannot change between this check and the request or the entry.
    rule = None if approval is not None else exchange_limits.rule_for(
        uow.conn, party.party_id, euro_cents)
    if rule is not None:
        approval_id = exchange_limits.record(
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
