"""Paying reconverted euros out by SEPA credit transfer (pain.001.001.03). No Flask here.

A reconversion leaves the euros owed to a prestataire on its euro account. One person
(roles bank and admin) **prepares** a batch: one line per prestataire with euros owed
and an IBAN in force, for its whole euro balance. **Another** user **releases** it
(checks the lines and lets the file go): only then, and never by the one who
prepared it, is the pain.001 file downloaded for the bank and the batch marked
**paid** (one entry of kind ``payout``: each prestataire's euro account −amount,
``eur_outside`` +total). A prepared or released batch can be **cancelled** (the bank
rejected the file, or it was never sent: nothing moves).
``prepared → released → paid``, ``prepared | released → cancelled`` is the whole
state machine (:data:`TRANSITIONS`); at most one batch is unsettled at a time. The
stored status is ``open`` until paid or cancelled, with ``released_at`` telling the
two open states apart (migration 0012). Rules and why: docs/ledger.md, "Virements de
reconversion (SEPA)", and docs/duties.md.
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

from bousol.ledger.books import hooks
from bousol.ledger.books.models import Account, Party, PartyKind, SystemAccount, User
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.desk.models import Payout, PayoutBatch
from bousol.ledger.kernel import iban as ibans
from bousol.ledger.kernel import inputs, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import PARIS, as_utc, paris_today
from bousol.ledger.kernel.errors import (
    InvalidInput,
    NothingToPay,
    NotReversible,
    PayoutBatchOpen,
    PayoutBatchTransition,
    PayoutNotConfigured,
    SecondPersonRequired,
    UnknownPayoutBatch,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

batches_t, payouts_t = PayoutBatch.__table__, Payout.__table__
parties_t, accounts_t, users_t = Party.__table__, Account.__table__, User.__table__

PAIN_NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
MAX35 = 35
NAME_MAX = 70  # SEPA rulebook: the creditor's and debtor's names, 70 characters
REMITTANCE_MAX = 140


class BatchStatus(enum.StrEnum):
    PREPARED = "prepared"
    RELEASED = "released"
    PAID = "paid"
    CANCELLED = "cancelled"


STORED_OPEN = "open"  # the stored status of a prepared or released batch

# The whole state machine: (from, to). Anything else is ``payout_batch_transition``.
TRANSITIONS: frozenset[tuple[BatchStatus, BatchStatus]] = frozenset({
    (BatchStatus.PREPARED, BatchStatus.RELEASED),
    (BatchStatus.RELEASED, BatchStatus.PAID),
    (BatchStatus.PREPARED, BatchStatus.CANCELLED),
    (BatchStatus.RELEASED, BatchStatus.CANCELLED),
})

_STATUS_WORDS = {BatchStatus.PREPARED: "préparé", BatchStatus.RELEASED: "libéré",
                 BatchStatus.PAID: "payé", BatchStatus.CANCELLED: "annulé"}
_TARGET_WORDS = {BatchStatus.RELEASED: "libéré", BatchStatus.PAID: "marqué comme payé",
                 BatchStatus.CANCELLED: "annulé"}


def status_of(stored: str, released_at: dt.datetime | None) -> str:
    """The batch's state from its stored status and its release."""
    if stored == STORED_OPEN:
        return (BatchStatus.RELEASED if released_at is not None
                else BatchStatus.PREPARED).value
    return stored


def _refusal(current: str, target: BatchStatus) -> PayoutBatchTransition:
    try:
        state: BatchStatus | None = BatchStatus(current)
    except ValueError:
        state = None
    word = _STATUS_WORDS.get(state, str(current)) if state else str(current)
    if state == BatchStatus.PREPARED and target == BatchStatus.PAID:
        message = ("Ce lot de virements n'est que préparé : une autre personne doit "
                   "le libérer avant qu'il soit envoyé à la banque et marqué payé.")
    else:
        message = (f"Ce lot de virements est déjà {word} : il ne peut plus être "
                   f"{_TARGET_WORDS.get(target, target.value)}.")
    return PayoutBatchTransition(message, status=str(current), target=target.value)


MACHINE = StateMachine.moves(TRANSITIONS, _refusal)


def check_transition(current: str, target: BatchStatus) -> None:
    """Refuse (``payout_batch_transition``) any move not in :data:`TRANSITIONS`."""
    MACHINE.next(current, target)


def _second_person(actor: Actor, prepared_by_user_id: int | None, what: str) -> None:
    """The two-person rule: whoever prepared a batch neither releases it, nor downloads
    its file, nor marks it paid (a CHECK backs the release and the payment)."""
    if actor.user_id is None or actor.user_id == prepared_by_user_id:
        raise SecondPersonRequired(
            f"Vous avez préparé ce lot : une autre personne doit {what}.")


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
    """The batch prepared or released and not yet paid or cancelled, if any."""
    return conn.execute(
        select(batches_t.c.id).where(batches_t.c.status == STORED_OPEN)
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
    released_at: dt.datetime | None = None
    released_by: str | None = None
    created_by_user_id: int | None = None

    @property
    def unsettled(self) -> bool:
        return self.status in (BatchStatus.PREPARED, BatchStatus.RELEASED)


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
    releaser = users_t.alias("releaser")
    rows = conn.execute(
        select(batches_t, creator.c.username.label("created_by"),
               closer.c.username.label("closed_by"),
               releaser.c.username.label("released_by"))
        .select_from(
            batches_t.outerjoin(creator, creator.c.id == batches_t.c.created_by_user_id)
            .outerjoin(closer, closer.c.id == batches_t.c.closed_by_user_id)
            .outerjoin(releaser, releaser.c.id == batches_t.c.released_by_user_id))
        .where(*conditions)
        .order_by(batches_t.c.id.desc())
        .limit(100)
    ).all()
    return [
        BatchSummary(r.id, status_of(r.status, r.released_at), r.message_id,
                     int(r.total_cents), r._mapping["count"],  # r.count: the tuple's method
                     r.created_at, r.created_by, r.closed_at,
                     r.closed_by, r.entry_id, r.released_at, r.released_by,
                     r.created_by_user_id)
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
    return inputs.database_id(batch_id, UnknownPayoutBatch())


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
    """One prepared batch of every prestataire owed euros that has an IBAN in force (a
    change still waiting for its confirmation does not count), for its whole euro
    balance, read under the accounts' locks (a reconversion running meanwhile waits,
    so the amounts are those of one moment)."""
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
                    status=STORED_OPEN, message_id=uuid.uuid4().hex,
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
        summary = BatchSummary(batch_id, BatchStatus.PREPARED.value, message_id, total,
                               len(lines), now, actor.username, None, None, None,
                               None, None, actor.user_id)
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
                    batches_t.c.status == STORED_OPEN))
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


def release(uow: UnitOfWork, actor: Actor, batch_id: int) -> BatchSummary:
    """A second user checked the prepared batch and lets it go: its file can now be
    downloaded for the bank (by anyone but its preparer). Under the batch's lock, so
    two releases at once release it once (the second: ``payout_batch_transition``)."""
    actor.require(Role.BANK, Role.ADMIN)
    batch_id = _check_batch_id(batch_id)
    with uow:
        conn = uow.conn
        row = _lock_batch(conn, batch_id)
        check_transition(status_of(row.status, row.released_at), BatchStatus.RELEASED)
        _second_person(actor, row.created_by_user_id, "le libérer")
        done = conn.execute(
            update(batches_t)
            .where(batches_t.c.id == batch_id, batches_t.c.status == STORED_OPEN,
                   batches_t.c.released_at.is_(None))
            .values(released_at=utcnow(), released_by_user_id=actor.user_id)).rowcount
        if done != 1:
            raise PayoutBatchTransition()
        uow.commit()
    with uow:
        return _summaries(uow.conn, batches_t.c.id == batch_id)[0]


def check_download(summary: BatchSummary, actor: Actor) -> None:
    """The file for the bank: only of a released batch, never by its preparer."""
    actor.require(Role.BANK, Role.ADMIN)
    if summary.status == BatchStatus.PREPARED:
        raise PayoutBatchTransition(
            "Ce lot n'est que préparé : une autre personne doit le libérer avant que son "
            "fichier parte à la banque.", status=summary.status)
    if summary.status != BatchStatus.RELEASED:
        raise PayoutBatchTransition(
            "Le fichier d'un lot payé ou annulé ne se télécharge plus : il ne doit pas "
            "être envoyé une seconde fois à la banque.", status=summary.status)
    _second_person(actor, summary.created_by_user_id, "télécharger son fichier")


def mark_paid(uow: UnitOfWork, actor: Actor, batch_id: int) -> PaidBatch:
    """The bank executed the file: one ``payout`` entry, each prestataire's euro account
    −amount and ``eur_outside`` +total; the batch is paid (who, when, which entry).
    Only a released batch, and never by the user who prepared it.

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
        check_transition(status_of(row.status, row.released_at), BatchStatus.PAID)
        _second_person(actor, row.created_by_user_id, "le marquer comme payé")
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
        check_transition(status_of(row.status, row.released_at), BatchStatus.CANCELLED)
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


# ---------------------------------------------------------------- what the books consult


def _refuse_reversal_in_an_open_batch(conn, candidate: hooks.ReversalCandidate) -> None:
    """Euros owed that sit in an open transfer file may already be at the bank: the
    entry that owed them cannot be undone until the batch is paid or cancelled. Checked
    under the account locks, which preparing a batch takes too."""
    batches, payouts, accounts = PayoutBatch.__table__, Payout.__table__, Account.__table__
    found = conn.execute(
        select(payouts.c.id)
        .select_from(payouts.join(batches, batches.c.id == payouts.c.batch_id)
                     .join(accounts, (accounts.c.party_id == payouts.c.party_id)
                           & (accounts.c.currency == "EUR")))
        .where(batches.c.status == "open", accounts.c.id.in_(candidate.account_ids))
        .limit(1)
    ).first()
    if found is not None:
        raise NotReversible("Les euros dus de cette opération sont dans un lot de virements "
                            "ouvert : payez ou annulez le lot d'abord.")


# A paid transfer left the bank: a transfer the bank rejects is an operation of its own.
hooks.irreversible_kind(
    "payout", "Un virement payé ne se contre-passe pas : un virement rejeté par la banque "
              "s'enregistre comme une opération à part.")
hooks.reversal_guard(_refuse_reversal_in_an_open_batch, under_locks=True)
