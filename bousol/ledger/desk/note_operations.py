"""What the desk does with paper notes in hand: sell them for euros (the exchange in notes), take
them back from a prestataire (deposit), and put old series back into circulation
(reactivation). The stock, the series, the moves they record and the reading of the stock are
:mod:`bousol.ledger.desk.notes`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, select, update

from bousol.ledger.books.models import PartyKind, SystemAccount
from bousol.ledger.books.operations import (
    _TENDER_ACCOUNT,
    Tender,
    check_bonus_advance,
    parse_tender,
    reconversion_fee_bp,
)
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.desk import bonus, closing, exchange_approvals
from bousol.ledger.desk.members import DESK_TENDERS
from bousol.ledger.desk.models import (
    NotePlace,
)
from bousol.ledger.desk.notes import (
    MAX_NOTES,
    _add_months,
    _denomination,
    _lock_serials,
    _record_move,
    _require_place,
    _require_valid,
    _serial_rows,
    _some_serials,
    desk_for,
    notes_t,
    parse_serials,
    parties_t,
)
from bousol.ledger.kernel import idempotency, inputs, money, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    FlowNotAllowed,
    InvalidAmount,
    InvalidInput,
    NotesAboveApprovalLimit,
    NotesMismatch,
    NotesOutOfStock,
    NoteStillValid,
    UnknownParty,
)
from bousol.ledger.kernel.rows import Rows
from bousol.ledger.kernel.uow import UnitOfWork

# ---------------------------------------------------------------- exchange in notes


@dataclass(frozen=True)
class NotesExchangeResult:
    entry_id: int
    party_code: str
    euro_cents: int
    bousol_cents: int
    bonus_cents: int
    serials: list[str]


def check_counts(counts: dict, bousol_cents: int) -> dict[int, int]:
    """The notes the clerk counted, checked against the Bou'Sols due (whole Bou'Sols)."""
    cleaned: dict[int, int] = {}
    for key, value in (counts or {}).items():
        denomination = _denomination(key)
        try:
            n = int(str(value or 0))
        except ValueError:
            raise InvalidInput(f"Nombre de billets de {denomination} : un entier.") from None
        if not 0 <= n <= MAX_NOTES:
            raise InvalidInput(f"Nombre de billets de {denomination} : de 0 à {MAX_NOTES}.")
        if n:
            cleaned[denomination] = n
    if bousol_cents % 100:
        below = bousol_cents // 2100 * 2000
        raise NotesMismatch(
            f"Le change en billets se fait en Bou'Sols entiers : ce montant donne "
            f"{money.format_fr(bousol_cents, 'B')}. Choisissez un multiple de 20 € "
            f"(par exemple {money.format_fr(below or 2000, '€')}).",
            due=bousol_cents,
        )
    face = 100 * sum(d * n for d, n in cleaned.items())
    if face != bousol_cents:
        gap = bousol_cents - face
        raise NotesMismatch(
            f"Les billets comptés font {money.format_fr(face, 'B')} pour "
            f"{money.format_fr(bousol_cents, 'B')} dus : "
            + (f"il manque {money.format_fr(gap, 'B')}." if gap > 0
               else f"il y a {money.format_fr(-gap, 'B')} de trop."),
            due=bousol_cents, counted=face,
        )
    return cleaned


def _pick_from_desk(conn: Connection, desk_id: int, counts: dict[int, int],
                    ranges: dict, today: dt.date) -> list:
    """The notes handed out: the serials typed for a denomination, else the lowest
    valid serials of that denomination at the desk (the top of the clerk's stack)."""
    picked: list = []
    postgres = conn.dialect.name == "postgresql"
    for denomination in sorted(counts, reverse=True):
        n = counts[denomination]
        typed = (ranges or {}).get(denomination) or (ranges or {}).get(str(denomination))
        if typed and str(typed).strip():
            rows: Rows = _lock_serials(conn, parse_serials(typed))
            if len(rows) != n:
                raise NotesMismatch(
                    f"Billets de {denomination} : {n} comptés, {len(rows)} numéros donnés.")
            wrong = [r.serial for r in rows if r.denomination != denomination]
            if wrong:
                raise NotesMismatch(f"Ce ne sont pas des billets de {denomination} : "
                                    + ", ".join(wrong[:10]) + ".")
            _require_place(rows, NotePlace.DESK, desk_id, "Billet(s) absent(s) de ce guichet : ")
            _require_valid(rows, today)
        else:
            query = (
                select(notes_t.c.id, notes_t.c.serial, notes_t.c.denomination,
                       notes_t.c.place, notes_t.c.desk_id, notes_t.c.valid_until)
                .where(notes_t.c.place == NotePlace.DESK.value, notes_t.c.desk_id == desk_id,
                       notes_t.c.denomination == denomination, notes_t.c.valid_until >= today)
                .order_by(notes_t.c.serial).limit(n)
            )
            # Two clerks at one desk take different notes rather than wait for each other.
            rows = conn.execute(query.with_for_update(skip_locked=True) if postgres
                                else query).all()
            if len(rows) < n:
                raise NotesOutOfStock(
                    f"Le guichet n'a que {len(rows)} billet(s) valable(s) de {denomination} "
                    f"pour {n} demandés : réapprovisionnez-le depuis le coffre.")
        picked.extend(rows)
    return picked


def exchange_notes(
    uow: UnitOfWork, actor: Actor, *, party_code: str, euros: object,
    counts: dict, ranges: dict | None = None, tender: Tender | str = Tender.CASH,
    desk: str | None = None, memo: str | None = None, idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> NotesExchangeResult:
    """Euros → Bou'Sols as paper notes from the clerk's desk, at 20 € = 21 B.

    One entry: the euros in by tender, the bonus from the bonus fund into the reserve,
    and the Bou'Sols from issuance to ``notes_circulation``; the notes move from the
    desk into circulation, linked to the entry and to the member who bought them.
    """
    actor.require(Role.BANK, Role.ADMIN)
    euro_cents = money.parse_amount(euros)
    party_code = inputs.party_code(party_code)
    tender = parse_tender(tender)
    memo = inputs.memo(memo)
    today = today or paris_today()
    bousol_cents, bonus_cents = money.bousols_for_euros(euro_cents)
    wanted = check_counts(counts, bousol_cents)
    typed = {str(_denomination(d)): str(r).strip() for d, r in (ranges or {}).items()
             if r and str(r).strip()}
    request = {"op": "exchange_notes", "party": party_code, "euros": euro_cents,
               "tender": tender.value, "counts": {str(d): n for d, n in wanted.items()},
               "ranges": typed, "desk": desk, "memo": memo}

    def work(uow: UnitOfWork) -> NotesExchangeResult:
        conn = uow.conn
        into = _TENDER_ACCOUNT[tender]
        locked = lock_accounts(
            conn,
            system=(SystemAccount.EUR_OUTSIDE, into, SystemAccount.EUR_RESERVE,
                    SystemAccount.BONUS_FUND, SystemAccount.ISSUANCE,
                    SystemAccount.NOTES_CIRCULATION),
        )
        if tender is not Tender.TRANSFER:  # the drawer or the terminal: counted at closing
            closing.ensure_desk_open(conn)  # after the lock: sees a closing just made
        party = conn.execute(
            select(parties_t.c.id, parties_t.c.kind).where(parties_t.c.code == party_code)
        ).first()
        if party is None:
            raise UnknownParty(f"Aucun adhérent ne porte le code {party_code}.")
        if party.kind not in (PartyKind.SOLISTE, PartyKind.CCAS):
            raise FlowNotAllowed("Le change d'euros en Bou'Sols est réservé aux solistes "
                                 "et au CCAS.")
        if not bonus.applies(conn, party.kind):
            # Without the bonus 20 € buy 20 B: the notes counted for 21 do not match.
            raise NotesMismatch("Pour le CCAS, la bonification est désactivée (réglage "
                                "ccas.bonus) : 20 € donnent 20 B, recomptez les billets.")
        desk_row = desk_for(conn, actor, desk)
        rows = _pick_from_desk(conn, desk_row.id, wanted, typed, today)
        # Above the approval thresholds an exchange waits for a second person; notes
        # are not held for it (docs/duties.md): refused, the desk exchanges
        # electronically instead. Under the system accounts' locks, like the others.
        rule = exchange_approvals.rule_for(conn, party.id, euro_cents)
        if rule is not None:
            limits = exchange_approvals.thresholds(conn)
            raise NotesAboveApprovalLimit(
                (f"Ce change dépasse {money.format_fr(limits.per_operation_cents, '€')} "
                 f"par opération" if rule == "operation" else
                 f"Avec ce change, l'adhérent dépasse "
                 f"{money.format_fr(limits.per_day_cents, '€')} changés aujourd'hui")
                + " : il demande l'approbation d'une deuxième personne et ne peut pas se "
                  "faire en billets. Faites un change électronique, qui attendra cette "
                  "approbation.", rule=rule)
        legs = [
            Leg(locked.system(SystemAccount.EUR_OUTSIDE), -euro_cents),
            Leg(locked.system(into), euro_cents),
            Leg(locked.system(SystemAccount.ISSUANCE), -bousol_cents),
            Leg(locked.system(SystemAccount.NOTES_CIRCULATION), bousol_cents),
        ]
        if bonus_cents:
            check_bonus_advance(conn, locked.system(SystemAccount.BONUS_FUND).balance,
                                bonus_cents)
            legs += [Leg(locked.system(SystemAccount.BONUS_FUND), -bonus_cents),
                     Leg(locked.system(SystemAccount.EUR_RESERVE), bonus_cents)]
        entry_id = post(
            conn, kind="exchange", legs=legs, actor_user_id=actor.user_id, memo=memo,
            details={"tender": tender.value, "rate": f"{money.RATE_EUR}:{money.RATE_BSOL}",
                     "form": "notes", "party": party_code},
        )
        _record_move(conn, actor, reason="exchange", notes=rows,
                     to_place=NotePlace.CIRCULATION, from_place=NotePlace.DESK.value,
                     from_desk_id=desk_row.id, entry_id=entry_id, party_id=party.id)
        return NotesExchangeResult(entry_id, party_code, euro_cents, bousol_cents,
                                   bonus_cents, [r.serial for r in rows])

    return idempotency.run(uow, actor, idempotency_key, request, NotesExchangeResult, work)


# ---------------------------------------------------------------- deposit by a prestataire


@dataclass(frozen=True)
class DepositResult:
    entry_id: int
    prestataire_code: str
    mode: str  # "credit" or "reconvert"
    bousol_cents: int  # face value deposited
    fee_cents: int
    euro_cents: int  # owed to the prestataire when reconverted
    count: int


DEPOSIT_MODES = ("credit", "reconvert")


def preview_deposit(conn: Connection, serials: object, today: dt.date | None = None) -> dict:
    """What a deposit would take, read without locks, for the confirmation screen."""
    wanted = _some_serials(serials)
    ordered = _serial_rows(conn, wanted, lock=False)
    _require_place(ordered, NotePlace.CIRCULATION, what="Billet(s) pas en circulation : ")
    _require_valid(ordered, today or paris_today())
    counts = Counter(r.denomination for r in ordered)
    return {"counts": dict(sorted(counts.items(), reverse=True)), "count": len(ordered),
            "face_cents": 100 * sum(r.denomination for r in ordered)}


def deposit(
    uow: UnitOfWork, actor: Actor, *, prestataire_code: str, serials: object,
    mode: str = "credit", memo: str | None = None, idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> DepositResult:
    """A prestataire brings notes back: credited to its Bou'Sol account, or reconverted
    at once (the Bou'Sols return to issuance, the reserve owes it the euros less the
    reconversion fee, paid out by transfer). The notes go to the ``returned`` place.
    Expired notes are refused: they are reactivated first."""
    actor.require(Role.BANK, Role.ADMIN)
    prestataire_code = inputs.party_code(prestataire_code)
    if mode not in DEPOSIT_MODES:
        raise InvalidInput("Dépôt : créditer le compte ou reconvertir en euros.")
    wanted = _some_serials(serials)
    memo = inputs.memo(memo)
    today = today or paris_today()
    request = {"op": "note_deposit", "prestataire": prestataire_code, "serials": wanted,
               "mode": mode, "memo": memo}

    def work(uow: UnitOfWork) -> DepositResult:
        conn = uow.conn
        fee_bp = reconversion_fee_bp(conn)
        locked = lock_accounts(
            conn,
            system=(SystemAccount.NOTES_CIRCULATION, SystemAccount.ISSUANCE,
                    SystemAccount.EUR_RESERVE, SystemAccount.FEES_INCOME),
            party_codes=(prestataire_code,), currencies=("BSOL", "EUR"),
        )
        account = locked.party(prestataire_code)
        if account.party_kind != PartyKind.PRESTATAIRE:
            raise FlowNotAllowed("Seul un prestataire dépose des billets au comptoir.")
        rows = _lock_serials(conn, wanted)
        _require_place(rows, NotePlace.CIRCULATION, what="Billet(s) pas en circulation : ")
        _require_valid(rows, today)
        face = 100 * sum(r.denomination for r in rows)
        fee_cents = euro_cents = 0
        notes_leg = Leg(locked.system(SystemAccount.NOTES_CIRCULATION), -face)
        if mode == "credit":
            kind, details = "note_deposit", {"count": len(rows)}
            legs = [notes_leg, Leg(account, face)]
        else:
            fee_cents = money.fee_for(face, fee_bp)
            euro_cents = face - fee_cents
            if euro_cents <= 0:
                raise InvalidAmount("Montant trop petit : la commission absorberait tout.")
            kind, details = "reconversion", {"fee_bp": fee_bp, "source": "notes",
                                             "count": len(rows)}
            legs = [notes_leg,
                    Leg(locked.system(SystemAccount.ISSUANCE), face),
                    Leg(locked.system(SystemAccount.EUR_RESERVE), -face),
                    Leg(locked.party(prestataire_code, "EUR"), euro_cents)]
            if fee_cents:
                legs.append(Leg(locked.system(SystemAccount.FEES_INCOME), fee_cents))
        entry_id = post(conn, kind=kind, legs=legs, actor_user_id=actor.user_id, memo=memo,
                        details=details)
        _record_move(conn, actor, reason="deposit", notes=rows, to_place=NotePlace.RETURNED,
                     from_place=NotePlace.CIRCULATION.value, entry_id=entry_id,
                     party_id=account.party_id)
        return DepositResult(entry_id, prestataire_code, mode, face, fee_cents, euro_cents,
                             len(rows))

    return idempotency.run(uow, actor, idempotency_key, request, DepositResult, work)


# ---------------------------------------------------------------- reactivation


@dataclass(frozen=True)
class ReactivationResult:
    entry_id: int
    mode: str  # "stamp" (new date on the same note) or "replace" (a valid note instead)
    face_cents: int
    fee_cents: int  # euros
    valid_until: str  # ISO date of the stamped notes ("" when replaced)
    returned: list[str]  # serials taken back (replace)
    handed_out: list[str]  # serials given in exchange (replace)


REACTIVATION_MODES = ("stamp", "replace")


def preview_reactivation(conn: Connection, serials: object) -> dict:
    """The notes and the fee a reactivation would take, read without locks, for the
    confirmation screen (``reactivate`` checks their place and date under its locks)."""
    rows = _serial_rows(conn, _some_serials(serials), lock=False)
    face = 100 * sum(r.denomination for r in rows)
    return {"notes": rows, "face_cents": face, "fee_cents": reactivation_fee(conn, face)}


def reactivation_fee(conn: Connection, face_cents: int) -> int:
    fee_bp = int(settings.current(conn, ["notes.reactivation_fee_bp"])
                 ["notes.reactivation_fee_bp"])
    return money.fee_for(face_cents, fee_bp)


def reactivate(
    uow: UnitOfWork, actor: Actor, *, serials: object, tender: Tender | str = Tender.CASH,
    mode: str = "stamp", desk: str | None = None, idempotency_key: str | None = None,
    today: dt.date | None = None,
) -> ReactivationResult:
    """Expired notes made good again against a fee in euros (5 % of the face value by
    default, rounded up), the association's income: stamped with a new validity date
    (``notes.validity_months`` from today) or swapped for valid notes of the same
    values from the desk. No Bou'Sol moves: the same face value stays in circulation.
    """
    actor.require(Role.BANK, Role.ADMIN)
    wanted = _some_serials(serials)
    tender = parse_tender(tender)
    if tender not in DESK_TENDERS:
        raise InvalidInput("Frais payés en espèces, par chèque ou par carte.")
    if mode not in REACTIVATION_MODES:
        raise InvalidInput("Réactivation : tamponner le billet ou l'échanger.")
    today = today or paris_today()
    request = {"op": "note_reactivation", "serials": wanted, "tender": tender.value,
               "mode": mode, "desk": desk}

    def work(uow: UnitOfWork) -> ReactivationResult:
        conn = uow.conn
        locked = lock_accounts(conn, system=(SystemAccount.EUR_OUTSIDE,
                                             SystemAccount.FEES_INCOME))
        closing.ensure_desk_open(conn)  # a fee taken at the desk: counted at closing
        rows = _lock_serials(conn, wanted)
        _require_place(rows, NotePlace.CIRCULATION, what="Billet(s) pas en circulation : ")
        valid = [r.serial for r in rows if r.valid_until >= today]
        if valid:
            raise NoteStillValid("Billet(s) encore valable(s) : " + ", ".join(valid[:10]) + ".",
                                 serials=valid[:50])
        face = 100 * sum(r.denomination for r in rows)
        fee = reactivation_fee(conn, face)
        details: dict[str, object] = {"tender": tender.value, "mode": mode,
                                      "count": len(rows), "face": face}
        until = ""
        handed: list = []
        if mode == "stamp":
            months = int(settings.current(conn, ["notes.validity_months"])
                         ["notes.validity_months"])
            until = _add_months(today, months).isoformat()
            details["until"] = until
        else:
            desk_row = desk_for(conn, actor, desk)
            handed = _pick_from_desk(conn, desk_row.id,
                                     dict(Counter(r.denomination for r in rows)), {}, today)
        entry_id = post(
            conn, kind="note_reactivation",
            legs=[Leg(locked.system(SystemAccount.EUR_OUTSIDE), -fee),
                  Leg(locked.system(SystemAccount.FEES_INCOME), fee)],
            actor_user_id=actor.user_id, details=details,
        )
        if mode == "stamp":
            _record_move(conn, actor, reason="reactivation", notes=rows,
                         to_place=NotePlace.CIRCULATION, from_place="circulation",
                         entry_id=entry_id, memo=f"valable jusqu'au {until}")
            ids = [r.id for r in rows]
            conn.execute(update(notes_t).where(notes_t.c.id.in_(ids))
                         .values(valid_until=dt.date.fromisoformat(until)))
        else:
            _record_move(conn, actor, reason="replacement", notes=rows,
                         to_place=NotePlace.RETURNED, from_place="circulation",
                         entry_id=entry_id)
            _record_move(conn, actor, reason="replacement", notes=handed,
                         to_place=NotePlace.CIRCULATION, from_place="desk",
                         from_desk_id=desk_row.id, entry_id=entry_id)
        return ReactivationResult(entry_id, mode, face, fee, until,
                                  [r.serial for r in rows] if mode == "replace" else [],
                                  [r.serial for r in handed])

    return idempotency.run(uow, actor, idempotency_key, request, ReactivationResult, work)
