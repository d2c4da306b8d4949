"""Paying reconverted euros out by SEPA credit transfer (pain.001.001.03). No Flask here.

A reconversion leaves the euros owed to a prestataire on its euro account. The
treasurer (roles bank and admin) prepares a **batch**: one line per prestataire with
euros owed and an IBAN, for its whole euro balance; downloads the pain.001 file and
hands it to the bank; then marks the batch **paid** (one entry of kind ``payout``:
each prestataire's euro account −amount, ``eur_outside`` +total) or **cancels** it
when the bank rejected the file (nothing moves). ``open → paid | cancelled`` is the
whole state machine (:data:`TRANSITIONS`); at most one batch is open at a time.
Rules and why: docs/ledger.md, "Virements de reconversion (SEPA)".
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from sqlalchemy import Connection, and_, exc, insert, select, update

from bousol import money
from bousol.ledger import iban as ibans
from bousol.ledger.actors import Actor
from bousol.ledger.clock import PARIS, as_utc, paris_today
from bousol.ledger.errors import (
    InvalidInput,
    NotAPrestataire,
    NothingToPay,
    PayoutBatchOpen,
    PayoutBatchTransition,
    PayoutNotConfigured,
    UnknownParty,
    UnknownPayoutBatch,
)
from bousol.ledger.models import (
    Account,
    Party,
    PartyKind,
    Payout,
    PayoutBatch,
    Role,
    SystemAccount,
    User,
    utcnow,
)
from bousol.ledger.operations import _party_code
from bousol.ledger.posting import Leg, lock_accounts, post
from bousol.ledger.uow import UnitOfWork

batches_t, payouts_t = PayoutBatch.__table__, Payout.__table__
parties_t, accounts_t, users_t = Party.__table__, Account.__table__, User.__table__

PAIN_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
MAX35 = 35
NAME_MAX = 70  # SEPA rulebook: the creditor's and debtor's names, 70 characters
REMITTANCE_MAX = 140


class BatchStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"


# The whole state machine: (from, to). Anything else is ``payout_batch_transition``.
TRANSITIONS: frozenset[tuple[BatchStatus, BatchStatus]] = frozenset({
    (BatchStatus.OPEN, BatchStatus.PAID),
    (BatchStatus.OPEN, BatchStatus.CANCELLED),
})

_STATUS_WORDS = {BatchStatus.OPEN: "ouvert", BatchStatus.PAID: "payé",
                 BatchStatus.CANCELLED: "annulé"}


def check_transition(current: str, target: BatchStatus) -> None:
    """Refuse (``payout_batch_transition``) any move not in :data:`TRANSITIONS`."""
    try:
        state = BatchStatus(current)
    except ValueError:
        state = None
    if state is None or (state, target) not in TRANSITIONS:
        word = _STATUS_WORDS.get(state, str(current)) if state else str(current)
        raise PayoutBatchTransition(
            f"Ce lot de virements est déjà {word} : il ne peut plus être "
            + ("marqué comme payé." if target == BatchStatus.PAID else "annulé."),
            status=str(current), target=target.value,
        )


# ---------------------------------------------------------------- SEPA text


# Characters of the SEPA basic Latin set (EPC rulebook): what every bank accepts.
_SEPA_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ "
)
_SPECIAL = {
    "&": "+", "’": "'", "‘": "'", "«": "'", "»": "'", '"': "'", "`": "'",
    "–": "-", "—": "-", "_": "-",
    "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "°": "o",
}


def sepa_text(text: str, limit: int) -> str:
    """Transliterate to the SEPA Latin set (``Élodie & Cie`` → ``Elodie + Cie``):
    accents dropped, a few letters spelled out, anything else a space; spaces collapsed;
    at most ``limit`` characters."""
    out = []
    for char in unicodedata.normalize("NFKD", "".join(_SPECIAL.get(c, c) for c in text)):
        if unicodedata.category(char) == "Mn":
            continue  # the accent of a decomposed letter
        out.append(char if char in _SEPA_CHARS else " ")
    return re.sub(r"\s+", " ", "".join(out)).strip()[:limit].strip()


# ---------------------------------------------------------------- bank details


@dataclass(frozen=True)
class BankDetails:
    party_code: str
    name: str
    iban: str | None
    bic: str | None

    @property
    def iban_display(self) -> str:
        return ibans.display(self.iban)


def bank_details(conn: Connection, party_code: str) -> BankDetails | None:
    row = conn.execute(
        select(parties_t.c.code, parties_t.c.name, parties_t.c.iban, parties_t.c.bic)
        .where(parties_t.c.code == party_code)
    ).first()
    return None if row is None else BankDetails(row.code, row.name, row.iban, row.bic)


def set_bank_details(uow: UnitOfWork, actor: Actor, party_code: str, iban: str | None,
                     bic: str | None = None) -> BankDetails:
    """Record where a prestataire's reconverted euros are paid (checked IBAN, optional BIC).

    A batch already prepared keeps the IBAN it copied; the next batch uses this one.
    """
    actor.require(Role.BANK, Role.ADMIN)
    code = _party_code(party_code)
    iban_value = ibans.validate_iban(iban)
    bic_value = ibans.validate_bic(bic)
    with uow:
        row = uow.conn.execute(
            select(parties_t.c.id, parties_t.c.kind, parties_t.c.name)
            .where(parties_t.c.code == code)
        ).first()
        if row is None:
            raise UnknownParty(f"Aucun adhérent ne porte le code {code}.")
        if row.kind != PartyKind.PRESTATAIRE:
            raise NotAPrestataire()
        uow.conn.execute(update(parties_t).where(parties_t.c.id == row.id)
                         .values(iban=iban_value, bic=bic_value))
        uow.commit()
    return BankDetails(code, row.name, iban_value, bic_value)


# ---------------------------------------------------------------- what is owed


@dataclass(frozen=True)
class PendingPayout:
    party_id: int
    party_code: str
    name: str
    eur_cents: int  # the euro account's balance: what the bank owes
    iban: str | None
    bic: str | None
    in_open_batch_cents: int  # of which already in the open batch (not yet paid)

    @property
    def payable(self) -> bool:
        return self.iban is not None


def _owed_query():
    return (
        select(parties_t.c.id, parties_t.c.code, parties_t.c.name, parties_t.c.iban,
               parties_t.c.bic, accounts_t.c.balance)
        .select_from(parties_t.join(accounts_t, accounts_t.c.party_id == parties_t.c.id))
        .where(parties_t.c.kind == PartyKind.PRESTATAIRE.value,
               accounts_t.c.currency == "EUR", accounts_t.c.purpose == "main",
               accounts_t.c.system_code.is_(None), accounts_t.c.balance > 0)
        .order_by(parties_t.c.code)
    )


def pending(conn: Connection) -> list[PendingPayout]:
    """Every prestataire owed euros (euro balance > 0), with or without an IBAN."""
    open_id = open_batch_id(conn)
    in_batch: dict[int, int] = {}
    if open_id is not None:
        in_batch = dict(conn.execute(
            select(payouts_t.c.party_id, payouts_t.c.amount_cents)
            .where(payouts_t.c.batch_id == open_id)).all())
    return [
        PendingPayout(r.id, r.code, r.name, int(r.balance), r.iban, r.bic,
                      int(in_batch.get(r.id, 0)))
        for r in conn.execute(_owed_query()).all()
    ]


def open_batch_id(conn: Connection) -> int | None:
    return conn.execute(
        select(batches_t.c.id).where(batches_t.c.status == BatchStatus.OPEN.value)
    ).scalar_one_or_none()


# ---------------------------------------------------------------- batches


@dataclass(frozen=True)
class BatchSummary:
    id: int
    status: str
    message_id: str
    total_cents: int
    count: int
    created_at: dt.datetime
    created_by: str | None
    closed_at: dt.datetime | None
    closed_by: str | None
    entry_id: int | None


@dataclass(frozen=True)
class PayoutLine:
    party_id: int
    party_code: str
    name: str
    amount_cents: int
    iban: str
    bic: str | None
    end_to_end_id: str


@dataclass(frozen=True)
class Batch:
    summary: BatchSummary
    lines: list[PayoutLine]


def _summaries(conn: Connection, *conditions) -> list[BatchSummary]:
    creator, closer = users_t.alias("creator"), users_t.alias("closer")
    rows = conn.execute(
        select(batches_t, creator.c.username.label("created_by"),
               closer.c.username.label("closed_by"))
        .select_from(
            batches_t.outerjoin(creator, creator.c.id == batches_t.c.created_by_user_id)
            .outerjoin(closer, closer.c.id == batches_t.c.closed_by_user_id))
        .where(*conditions)
        .order_by(batches_t.c.id.desc())
        .limit(100)
    ).all()
    return [
        BatchSummary(r.id, r.status, r.message_id, int(r.total_cents), r.count,
                     r.created_at, r.created_by, r.closed_at, r.closed_by, r.entry_id)
        for r in rows
    ]


def batches(conn: Connection) -> list[BatchSummary]:
    """The latest batches, newest first (at most 100)."""
    return _summaries(conn)


def batch(conn: Connection, batch_id: int) -> Batch:
    found = _summaries(conn, batches_t.c.id == batch_id)
    if not found:
        raise UnknownPayoutBatch()
    rows = conn.execute(
        select(payouts_t, parties_t.c.code)
        .select_from(payouts_t.join(parties_t, parties_t.c.id == payouts_t.c.party_id))
        .where(payouts_t.c.batch_id == batch_id)
        .order_by(payouts_t.c.id)
    ).all()
    return Batch(found[0], [
        PayoutLine(r.party_id, r.code, r.name, int(r.amount_cents), r.iban, r.bic,
                   r.end_to_end_id)
        for r in rows
    ])


def _check_batch_id(batch_id: object) -> int:
    if isinstance(batch_id, bool) or not isinstance(batch_id, int) or not 0 < batch_id < 2**31:
        raise UnknownPayoutBatch()
    return batch_id


def message_id_for(batch_id: int, created_at: dt.datetime) -> str:
    """``BSOL-20261122101500-000042``: unique by the batch number, dated so that a
    database restored from a backup does not reuse an identifier the bank saw."""
    value = f"BSOL-{created_at.astimezone(dt.UTC):%Y%m%d%H%M%S}-{batch_id:06d}"
    assert len(value) <= MAX35
    return value


def end_to_end_id_for(batch_id: int, party_code: str) -> str:
    """``BSOL-000042-P-000007``: one per prestataire and batch (unique by the schema)."""
    value = f"BSOL-{batch_id:06d}-{party_code}"
    assert len(value) <= MAX35
    return value


def create_batch(uow: UnitOfWork, actor: Actor) -> BatchSummary:
    """One open batch of every prestataire owed euros that has an IBAN, for its whole
    euro balance, read under the accounts' locks (a reconversion running meanwhile
    waits, so the amounts are those of one moment)."""
    actor.require(Role.BANK, Role.ADMIN)
    with uow:
        conn = uow.conn
        candidates = {r.code: r for r in conn.execute(
            _owed_query().where(parties_t.c.iban.is_not(None))).all()}
        locked = (lock_accounts(conn, party_codes=tuple(candidates), currencies=("EUR",))
                  if candidates else None)
        # Checked after the locks: a batch made meanwhile by someone else is seen here
        # (and the partial unique index backs it on both databases).
        already = open_batch_id(conn)
        if already is not None:
            raise PayoutBatchOpen(batch=already)
        lines = []
        for code, row in candidates.items():
            balance = locked.party(code, "EUR").balance if locked else 0
            if balance > 0:  # it may have changed between the read and the lock
                lines.append((row, balance))
        if not lines:
            raise NothingToPay()
        now = utcnow()
        total = sum(balance for _, balance in lines)
        try:
            batch_id = conn.execute(
                insert(batches_t).values(
                    status=BatchStatus.OPEN.value, message_id=uuid.uuid4().hex,
                    total_cents=total, count=len(lines), created_at=now,
                    created_by_user_id=actor.user_id,
                ).returning(batches_t.c.id)
            ).scalar_one()
        except exc.IntegrityError:  # a concurrent batch won the "one open" index
            raise PayoutBatchOpen() from None
        message_id = message_id_for(batch_id, now)
        conn.execute(update(batches_t).where(batches_t.c.id == batch_id)
                     .values(message_id=message_id))
        conn.execute(insert(payouts_t), [
            {"batch_id": batch_id, "party_id": row.id, "amount_cents": balance,
             "name": row.name[:140], "iban": row.iban, "bic": row.bic,
             "end_to_end_id": end_to_end_id_for(batch_id, row.code)}
            for row, balance in lines
        ])
        summary = BatchSummary(batch_id, BatchStatus.OPEN.value, message_id, total,
                               len(lines), now, actor.username, None, None, None)
        uow.commit()
    return summary


def _lock_batch(conn: Connection, batch_id: int):
    """The batch row, locked (FOR UPDATE; SQLite: the unit of work's write lock)."""
    row = conn.execute(
        select(batches_t).where(batches_t.c.id == batch_id).with_for_update()
    ).first()
    if row is None:
        raise UnknownPayoutBatch()
    return row


def _close(conn: Connection, actor: Actor, batch_id: int, target: BatchStatus,
           entry_id: int | None = None) -> dt.datetime:
    now = utcnow()
    done = conn.execute(
        update(batches_t)
        .where(and_(batches_t.c.id == batch_id,
                    batches_t.c.status == BatchStatus.OPEN.value))
        .values(status=target.value, closed_at=now, closed_by_user_id=actor.user_id,
                entry_id=entry_id)
    ).rowcount
    if done != 1:  # the status check above held the lock; this is a second guard
        raise PayoutBatchTransition()
    return now


@dataclass(frozen=True)
class PaidBatch:
    batch_id: int
    entry_id: int
    total_cents: int
    count: int


def mark_paid(uow: UnitOfWork, actor: Actor, batch_id: int) -> PaidBatch:
    """The bank executed the file: one ``payout`` entry, each prestataire's euro account
    −amount and ``eur_outside`` +total; the batch is paid (who, when, which entry).

    The batch row is locked first and its status checked under that lock, so paying
    twice, even at the same instant, moves the money once (the second is refused with
    ``payout_batch_transition``). A prestataire whose euros fell below the amount
    meanwhile (a reconversion reversed) makes it ``insufficient_funds``: cancel the
    batch and prepare a new one.
    """
    actor.require(Role.BANK, Role.ADMIN)
    batch_id = _check_batch_id(batch_id)
    with uow:
        conn = uow.conn
        row = _lock_batch(conn, batch_id)
        check_transition(row.status, BatchStatus.PAID)
        lines = conn.execute(
            select(payouts_t.c.amount_cents, parties_t.c.code)
            .select_from(payouts_t.join(parties_t, parties_t.c.id == payouts_t.c.party_id))
            .where(payouts_t.c.batch_id == batch_id)
            .order_by(payouts_t.c.id)
        ).all()
        locked = lock_accounts(conn, system=(SystemAccount.EUR_OUTSIDE,),
                               party_codes=tuple(line.code for line in lines),
                               currencies=("EUR",))
        total = sum(int(line.amount_cents) for line in lines)
        if total != row.total_cents or len(lines) != row.count:
            raise InvalidInput("Le lot ne correspond plus à ses lignes.")  # never, by design
        legs = [Leg(locked.party(line.code, "EUR"), -int(line.amount_cents))
                for line in lines]
        legs.append(Leg(locked.system(SystemAccount.EUR_OUTSIDE), total))
        entry_id = post(
            conn, kind="payout", legs=legs, actor_user_id=actor.user_id,
            memo=f"Virements SEPA de reconversion, lot {row.message_id}",
            details={"batch": batch_id, "message_id": row.message_id},
        )
        _close(conn, actor, batch_id, BatchStatus.PAID, entry_id)
        uow.commit()
    return PaidBatch(batch_id, entry_id, total, len(lines))


def cancel(uow: UnitOfWork, actor: Actor, batch_id: int) -> None:
    """The bank rejected the file (or it was never sent): the batch is cancelled and no
    money moves; the euros stay owed and go into the next batch."""
    actor.require(Role.BANK, Role.ADMIN)
    batch_id = _check_batch_id(batch_id)
    with uow:
        row = _lock_batch(uow.conn, batch_id)
        check_transition(row.status, BatchStatus.CANCELLED)
        _close(uow.conn, actor, batch_id, BatchStatus.CANCELLED)
        uow.commit()


# ---------------------------------------------------------------- the pain.001 file


@dataclass(frozen=True)
class Debtor:
    """The account the transfers leave: the Crédit Municipal account of the reserve."""

    name: str
    iban: str
    bic: str | None = None


def _debtor(debtor: Debtor) -> Debtor:
    name = sepa_text(debtor.name or "", NAME_MAX)
    if not name or not debtor.iban:
        raise PayoutNotConfigured()
    try:
        return Debtor(name, ibans.validate_iban(debtor.iban), ibans.validate_bic(debtor.bic))
    except InvalidInput as error:
        raise PayoutNotConfigured(
            f"Le compte débiteur configuré est invalide : {error.message}") from None


def cents_text(cents: int) -> str:
    """Integer cents as the file's amount, two decimals: 123456 → ``1234.56``."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise ValueError(f"not an amount in cents: {cents!r}")
    return money.format_plain(cents)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _agent(parent: ET.Element, tag: str, bic: str | None) -> None:
    institution = _sub(_sub(parent, tag), "FinInstnId")
    if bic:
        _sub(institution, "BIC", bic)
    else:  # SEPA: IBAN only, the bank finds the agent
        _sub(_sub(institution, "Othr"), "Id", "NOTPROVIDED")


def pain001_xml(conn: Connection, batch_id: int, debtor: Debtor,
                execution_date: dt.date | None = None) -> bytes:
    """The batch as a pain.001.001.03 document (UTF-8 bytes), one payment information
    block, one transaction per prestataire. Amounts come from integer cents; names are
    transliterated to the SEPA Latin set, 70 characters at most. The requested
    execution date is ``execution_date`` (default: today in Paris)."""
    found = batch(conn, _check_batch_id(batch_id))
    summary, lines = found.summary, found.lines
    payer = _debtor(debtor)
    created = as_utc(summary.created_at).astimezone(PARIS)
    created_text = created.replace(tzinfo=None, microsecond=0).isoformat()
    total = cents_text(sum(line.amount_cents for line in lines))

    document = ET.Element("Document", {"xmlns": PAIN_NS})
    initiation = _sub(document, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", summary.message_id)
    _sub(header, "CreDtTm", created_text)
    _sub(header, "NbOfTxs", str(len(lines)))
    _sub(header, "CtrlSum", total)
    _sub(_sub(header, "InitgPty"), "Nm", payer.name)

    info = _sub(initiation, "PmtInf")
    _sub(info, "PmtInfId", f"{summary.message_id}-1"[:MAX35])
    _sub(info, "PmtMtd", "TRF")
    _sub(info, "BtchBookg", "true")
    _sub(info, "NbOfTxs", str(len(lines)))
    _sub(info, "CtrlSum", total)
    _sub(_sub(_sub(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _sub(info, "ReqdExctnDt", (execution_date or paris_today()).isoformat())
    _sub(_sub(info, "Dbtr"), "Nm", payer.name)
    _sub(_sub(_sub(info, "DbtrAcct"), "Id"), "IBAN", payer.iban)
    _agent(info, "DbtrAgt", payer.bic)
    _sub(info, "ChrgBr", "SLEV")

    for line in lines:
        transaction = _sub(info, "CdtTrfTxInf")
        _sub(_sub(transaction, "PmtId"), "EndToEndId", line.end_to_end_id)
        _sub(_sub(transaction, "Amt"), "InstdAmt", cents_text(line.amount_cents), Ccy="EUR")
        if line.bic:
            _agent(transaction, "CdtrAgt", line.bic)
        _sub(_sub(transaction, "Cdtr"), "Nm", sepa_text(line.name, NAME_MAX) or line.party_code)
        _sub(_sub(_sub(transaction, "CdtrAcct"), "Id"), "IBAN", line.iban)
        _sub(_sub(transaction, "RmtInf"), "Ustrd", sepa_text(
            f"Reconversion Bou'Sol {line.party_code} lot {summary.message_id}",
            REMITTANCE_MAX))
    ET.indent(document)
    return ET.tostring(document, encoding="UTF-8", xml_declaration=True)

