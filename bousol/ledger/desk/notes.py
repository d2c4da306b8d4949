"""Paper notes: series, serials, the stock by place, and the operations that put notes
into circulation or take them back.

One row per serial (``notes``) says where each note is: a serial is therefore in exactly
one place, and a serial that was never registered does not exist. Every move is
recorded (``note_moves`` and its items, append-only) with who, when and why, and, when
money moves with the notes, the journal entry it belongs to.

The ledger's ``notes_circulation`` account holds the face value of the notes the stock
says are in circulation; ``verify`` proves it. Only the operations that move notes in or
out of circulation post entries:

- exchange in notes: euros in, Bou'Sols from issuance to ``notes_circulation``;
- deposit by a prestataire: ``notes_circulation`` to its account, or straight back to
  issuance as a reconversion (the reserve pays the euros, less the fee);
- reactivation of an expired note: a fee in euros (income), the note stamped with a new
  date or swapped for a valid one (same face value, so no Bou'Sol moves).

Moves between the bank's own places (printer's delivery, vault, desks, returned,
destroyed) change no balance: notes outside circulation are paper, not money.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from bousol.ledger.books.operations import (
    _TENDER_ACCOUNT,
    Tender,
    _memo,
    _party_code,
    check_bonus_advance,
    parse_tender,
    reconversion_fee_bp,
)
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.desk import closing, exchange_approvals
from bousol.ledger.desk.members import DESK_TENDERS
from bousol.ledger.kernel import idempotency, money, settings
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    FlowNotAllowed,
    InvalidAmount,
    InvalidInput,
    MoveNotAllowed,
    NoDesk,
    NoteExpired,
    NoteNotAvailable,
    NotesAboveApprovalLimit,
    NotesMismatch,
    NotesOutOfStock,
    NoteStillValid,
    SerialExists,
    UnknownParty,
    UnknownSerial,
)
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import (
    NOTE_DENOMINATIONS,
    Desk,
    Note,
    NoteMove,
    NoteMoveItem,
    NotePlace,
    NoteSeries,
    Party,
    PartyKind,
    Role,
    SystemAccount,
    User,
    utcnow,
)

notes_t = Note.__table__
series_t = NoteSeries.__table__
moves_t = NoteMove.__table__
items_t = NoteMoveItem.__table__
desks_t = Desk.__table__
parties_t = Party.__table__
users_t = User.__table__

SERIES_RE = re.compile(r"[A-Z][A-Z0-9]{0,5}")
MAX_NOTES = 2000  # per operation: a bundle at the desk, not a truckload
MAX_DELIVERY = 100_000  # per printer's delivery
_SERIAL = r"([A-Z][A-Z0-9]{0,5})-([0-9]{6})"
_ITEM_RE = re.compile(_SERIAL + r"(?:\s*(?:\.\.|À|–|-)\s*(?:([A-Z][A-Z0-9]{0,5})-)?([0-9]{6}))?")
_SEPARATORS_RE = re.compile(r"[\s,;]*")

# The moves the stock allows without money, and why each happens. Moves in and out of
# circulation happen only through the operations below, which post their entries.
STOCK_MOVES: dict[tuple[NotePlace, NotePlace], str] = {
    (NotePlace.PRINTED, NotePlace.VAULT): "to_vault",
    (NotePlace.VAULT, NotePlace.DESK): "to_desk",
    (NotePlace.DESK, NotePlace.DESK): "between_desks",
    (NotePlace.DESK, NotePlace.VAULT): "to_vault",
    (NotePlace.RETURNED, NotePlace.VAULT): "to_vault",
    (NotePlace.RETURNED, NotePlace.DESTROYED): "destruction",
    (NotePlace.VAULT, NotePlace.DESTROYED): "destruction",
    (NotePlace.PRINTED, NotePlace.DESTROYED): "destruction",  # a misprint
}


def serial_for(series_code: str, number: int) -> str:
    return f"{series_code}-{number:06d}"


def parse_serials(text: object) -> list[str]:
    """Serials as the clerk types or scans them: single serials and ranges
    (``A26-000101..000120``, ``A26-000101 à A26-000120``, ``A26-000101-000120``),
    separated by spaces, commas, semicolons or new lines. Order kept, duplicates refused.
    """
    if not isinstance(text, str):
        raise InvalidInput("Numéros de billets attendus sous forme de texte.")
    text = text.upper()
    serials: list[str] = []
    pos = _SEPARATORS_RE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        found = _ITEM_RE.match(text, pos)
        if found is None:
            raise InvalidInput(
                f"Numéro de billet illisible : « {text[pos:pos + 20].split()[0]} » "
                "(attendu : SÉRIE-NNNNNN, ou une plage SÉRIE-NNNNNN..NNNNNN)."
            )
        series, first, end_series, last = found.groups()
        if last is None:
            serials.append(serial_for(series, int(first)))
        else:
            if end_series not in (None, series) or int(last) < int(first):
                raise InvalidInput(f"Plage de billets invalide : « {found.group(0)} ».")
            if int(last) - int(first) + 1 > MAX_NOTES:
                raise InvalidInput(f"Au plus {MAX_NOTES} billets par opération.")
            serials.extend(serial_for(series, n) for n in range(int(first), int(last) + 1))
        if len(serials) > MAX_NOTES:
            raise InvalidInput(f"Au plus {MAX_NOTES} billets par opération.")
        pos = found.end()
        after = _SEPARATORS_RE.match(text, pos).end()  # type: ignore[union-attr]
        if after == pos and after < len(text):
            raise InvalidInput(f"Séparez les numéros de billets : « {text[pos:pos + 20]} ».")
        pos = after
    twice = [serial for serial, n in Counter(serials).items() if n > 1]
    if twice:
        raise InvalidInput(f"Billet(s) indiqué(s) deux fois : {', '.join(twice[:10])}.")
    return serials


def _some_serials(text: object) -> list[str]:
    """The serials of an operation on notes: at least one."""
    serials = parse_serials(text)
    if not serials:
        raise InvalidInput("Indiquez au moins un billet.")
    return serials


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _date(value: object, label: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
        found = re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", value.strip())
        if found:
            day, month, year = (int(part) for part in found.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                pass
    raise InvalidInput(f"{label} : date attendue (JJ/MM/AAAA).")


def _denomination(value: object) -> int:
    try:
        denomination = int(str(value))
    except ValueError:
        denomination = 0
    if denomination not in NOTE_DENOMINATIONS:
        raise InvalidInput("Valeur de billet inconnue : 1, 2, 5, 10 ou 20 Bou'Sols.")
    return denomination


# ---------------------------------------------------------------- desks


def desk_for(conn: Connection, actor: Actor, desk_code: str | None = None):
    """The desk an operation happens at: the one named, else the clerk's own, else the
    only active desk there is."""
    query = select(desks_t.c.id, desks_t.c.code, desks_t.c.name).where(desks_t.c.active)
    if desk_code is not None:
        row = conn.execute(query.where(desks_t.c.code == str(desk_code)[:16])).first()
        if row is None:
            raise NoDesk(f"Aucun guichet actif ne porte le code {str(desk_code)[:16]}.")
        return row
    if actor.user_id is not None:
        row = conn.execute(
            query.join(users_t, users_t.c.desk_id == desks_t.c.id)
            .where(users_t.c.id == actor.user_id)
        ).first()
        if row is not None:
            return row
    rows = conn.execute(query.limit(2)).all()
    if len(rows) == 1:
        return rows[0]
    raise NoDesk()


def desks(conn: Connection) -> list:
    return conn.execute(
        select(desks_t.c.id, desks_t.c.code, desks_t.c.name)
        .where(desks_t.c.active).order_by(desks_t.c.code)
    ).all()


# ---------------------------------------------------------------- moves


def _record_move(conn: Connection, actor: Actor, *, reason: str, notes: list,
                 to_place: NotePlace, to_desk_id: int | None = None,
                 from_place: str | None = None, from_desk_id: int | None = None,
                 entry_id: int | None = None, party_id: int | None = None,
                 memo: str | None = None, update_place: bool = True) -> int:
    """Record one move of ``notes`` (rows with ``id`` and ``denomination``) and put them
    in their new place."""
    move_id = conn.execute(
        insert(moves_t).values(
            at=utcnow(), actor_user_id=actor.user_id, reason=reason, from_place=from_place,
            from_desk_id=from_desk_id, to_place=to_place.value, to_desk_id=to_desk_id,
            count=len(notes), face_cents=100 * sum(n.denomination for n in notes),
            entry_id=entry_id, party_id=party_id, memo=memo,
        ).returning(moves_t.c.id)
    ).scalar_one()
    conn.execute(insert(items_t), [{"move_id": move_id, "note_id": n.id} for n in notes])
    if update_place:
        ids = [n.id for n in notes]
        for start in range(0, len(ids), 500):
            conn.execute(
                update(notes_t).where(notes_t.c.id.in_(ids[start:start + 500]))
                .values(place=to_place.value, desk_id=to_desk_id)
            )
    return move_id


def _lock_serials(conn: Connection, serials: list[str]) -> list:
    """The rows of ``serials``, locked, in the order given; unknown ones refused."""
    return _serial_rows(conn, serials, lock=True)


def _serial_rows(conn: Connection, serials: list[str], *, lock: bool) -> list:
    """The rows of ``serials`` in the order given (locked, or a plain read for a
    confirmation screen); serials never registered are refused."""
    query = (
        select(notes_t.c.id, notes_t.c.serial, notes_t.c.denomination, notes_t.c.place,
               notes_t.c.desk_id, notes_t.c.valid_until)
        .where(notes_t.c.serial.in_(serials))
        .order_by(notes_t.c.id)
    )
    rows = conn.execute(query.with_for_update() if lock else query).all()
    by_serial = {row.serial: row for row in rows}
    unknown = [s for s in serials if s not in by_serial]
    if unknown:
        raise UnknownSerial(
            f"Billet(s) jamais enregistré(s) : {', '.join(unknown[:10])}"
            + (f" et {len(unknown) - 10} autres." if len(unknown) > 10 else "."),
            serials=unknown[:50],
        )
    return [by_serial[s] for s in serials]


_PLACE_WORDS = {
    "printed": "chez l'imprimeur", "vault": "au coffre", "desk": "à un guichet",
    "circulation": "en circulation", "returned": "rendu", "destroyed": "détruit",
}


def _require_place(rows: list, place: NotePlace, desk_id: int | None = None,
                   what: str = "") -> None:
    wrong = [r for r in rows
             if r.place != place.value or (desk_id is not None and r.desk_id != desk_id)]
    if wrong:
        sample = ", ".join(f"{r.serial} ({_PLACE_WORDS.get(r.place, r.place)})"
                           for r in wrong[:10])
        raise NoteNotAvailable(f"{what}{sample}.", serials=[r.serial for r in wrong[:50]])


def _require_valid(rows: list, today: dt.date) -> None:
    expired = [r for r in rows if r.valid_until < today]
    if expired:
        raise NoteExpired(
            "Billet(s) périmé(s), à réactiver ou échanger d'abord : "
            + ", ".join(r.serial for r in expired[:10]) + ".",
            serials=[r.serial for r in expired[:50]],
        )


# ---------------------------------------------------------------- series and deliveries


@dataclass(frozen=True)
class DeliveryResult:
    series_code: str
    denomination: int
    first_serial: str
    last_serial: str
    count: int


def register_series(uow: UnitOfWork, actor: Actor, *, code: str, printed_on: object,
                    valid_until: object) -> str:
    """A new print run. Its code starts every serial (``A26-000001``)."""
    actor.require(Role.BANK, Role.ADMIN)
    code = str(code or "").strip().upper()
    if not SERIES_RE.fullmatch(code):
        raise InvalidInput("Code de série : une lettre puis jusqu'à 5 lettres ou chiffres.")
    printed, until = _date(printed_on, "Date d'impression"), _date(valid_until, "Validité")
    if until <= printed:
        raise InvalidInput("La fin de validité doit suivre la date d'impression.")
    with uow:
        try:
            uow.conn.execute(insert(series_t).values(
                code=code, printed_on=printed, valid_until=until, created_at=utcnow(),
                created_by_user_id=actor.user_id))
            uow.session.flush()
        except IntegrityError:
            raise SerialExists(f"La série {code} existe déjà.") from None
        uow.commit()
    return code


def register_delivery(uow: UnitOfWork, actor: Actor, *, series_code: str,
                      denomination: object, first: object, last: object,
                      memo: str | None = None) -> DeliveryResult:
    """A printer's delivery: notes ``first``..``last`` of a series and denomination,
    registered as printed. Serials already registered are refused (all or nothing)."""
    actor.require(Role.BANK, Role.ADMIN)
    value = _denomination(denomination)
    memo = _memo(memo)
    try:
        low, high = int(str(first)), int(str(last))
    except ValueError:
        raise InvalidInput("Numéros de début et de fin : des nombres.") from None
    if not 0 < low <= high <= 999_999:
        raise InvalidInput("Numéros : de 1 à 999999, le premier avant le dernier.")
    if high - low + 1 > MAX_DELIVERY:
        raise InvalidInput(f"Au plus {MAX_DELIVERY} billets par livraison.")
    with uow:
        conn = uow.conn
        series = conn.execute(
            select(series_t.c.id, series_t.c.code, series_t.c.valid_until)
            .where(series_t.c.code == str(series_code or "").strip().upper())
        ).first()
        if series is None:
            raise InvalidInput(f"Série inconnue : {str(series_code)[:8]}.")
        serials = [serial_for(series.code, n) for n in range(low, high + 1)]
        taken = conn.execute(
            select(func.count()).where(notes_t.c.series_id == series.id,
                                       notes_t.c.serial.between(serials[0], serials[-1]))
        ).scalar_one()
        if taken:
            raise SerialExists(f"{taken} de ces numéros sont déjà enregistrés.")
        try:
            for start in range(0, len(serials), 5000):
                conn.execute(insert(notes_t), [
                    {"serial": s, "series_id": series.id, "denomination": value,
                     "place": NotePlace.PRINTED.value, "desk_id": None,
                     "valid_until": series.valid_until}
                    for s in serials[start:start + 5000]
                ])
        except IntegrityError:  # a delivery registered at the same moment
            raise SerialExists() from None
        rows = conn.execute(
            select(notes_t.c.id, notes_t.c.denomination)
            .where(notes_t.c.serial.between(serials[0], serials[-1]),
                   notes_t.c.series_id == series.id)
        ).all()
        _record_move(conn, actor, reason="delivery", notes=rows, to_place=NotePlace.PRINTED,
                     memo=memo, update_place=False)
        uow.commit()
    return DeliveryResult(series.code, value, serials[0], serials[-1], len(serials))


@dataclass(frozen=True)
class MoveResult:
    move_id: int
    count: int
    face_cents: int


def move(uow: UnitOfWork, actor: Actor, *, serials: object, to_place: str,
         to_desk: str | None = None, memo: str | None = None) -> MoveResult:
    """Move notes between the bank's own places (``STOCK_MOVES``); all the notes must
    come from one place (and desk)."""
    actor.require(Role.BANK, Role.ADMIN)
    wanted = _some_serials(serials)
    try:
        target = NotePlace(to_place)
    except ValueError:
        raise InvalidInput("Destination inconnue.") from None
    memo = _memo(memo)
    with uow:
        conn = uow.conn
        target_desk = desk_for(conn, actor, to_desk).id if target == NotePlace.DESK else None
        rows = _lock_serials(conn, wanted)
        origins = {(r.place, r.desk_id) for r in rows}
        if len(origins) > 1:
            raise MoveNotAllowed("Ces billets ne sont pas tous au même endroit : "
                                 "déplacez-les en plusieurs fois.")
        (place, desk_id), = origins
        reason = STOCK_MOVES.get((NotePlace(place), target))
        if reason is None or (target == NotePlace.DESK and desk_id == target_desk):
            raise MoveNotAllowed(
                f"Mouvement non permis : {_PLACE_WORDS[place]} → {_PLACE_WORDS[target.value]}."
            )
        move_id = _record_move(conn, actor, reason=reason, notes=rows, to_place=target,
                               to_desk_id=target_desk, from_place=place, from_desk_id=desk_id,
                               memo=memo)
        uow.commit()
    return MoveResult(move_id, len(rows), 100 * sum(r.denomination for r in rows))


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
            rows = _lock_serials(conn, parse_serials(typed))
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
    party_code = _party_code(party_code)
    tender = parse_tender(tender)
    memo = _memo(memo)
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
        if party.kind == PartyKind.CCAS and settings.current(
                conn, ["ccas.bonus"])["ccas.bonus"] == "off":
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
    prestataire_code = _party_code(prestataire_code)
    if mode not in DEPOSIT_MODES:
        raise InvalidInput("Dépôt : créditer le compte ou reconvertir en euros.")
    wanted = _some_serials(serials)
    memo = _memo(memo)
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


# ---------------------------------------------------------------- reading the stock


@dataclass(frozen=True)
class StockLine:
    place: str
    desk_code: str | None
    denomination: int
    count: int
    expired: int


def stock(conn: Connection, today: dt.date | None = None) -> list[StockLine]:
    """How many notes of each value are in each place (each desk apart), and how many
    of them are past their date."""
    today = today or paris_today()
    expired = func.sum(case((notes_t.c.valid_until < today, 1), else_=0))
    rows = conn.execute(
        select(notes_t.c.place, desks_t.c.code, notes_t.c.denomination, func.count(),
               expired)
        .select_from(notes_t.outerjoin(desks_t, desks_t.c.id == notes_t.c.desk_id))
        .group_by(notes_t.c.place, desks_t.c.code, notes_t.c.denomination)
    ).all()
    order = {p.value: i for i, p in enumerate(NotePlace)}
    return sorted((StockLine(r[0], r[1], r[2], r[3], int(r[4] or 0)) for r in rows),
                  key=lambda s: (order[s.place], s.desk_code or "", s.denomination))


def circulation_face_cents(conn: Connection) -> int:
    return 100 * int(conn.execute(
        select(func.coalesce(func.sum(notes_t.c.denomination), 0))
        .where(notes_t.c.place == NotePlace.CIRCULATION.value)
    ).scalar_one())


def series_list(conn: Connection) -> list:
    return conn.execute(
        select(series_t.c.code, series_t.c.printed_on, series_t.c.valid_until,
               func.count(notes_t.c.id).label("notes"))
        .select_from(series_t.outerjoin(notes_t, notes_t.c.series_id == series_t.c.id))
        .group_by(series_t.c.id, series_t.c.code, series_t.c.printed_on,
                  series_t.c.valid_until)
        .order_by(series_t.c.printed_on.desc())
    ).all()


def note_history(conn: Connection, serial: str):
    """One note and every move it made, oldest first; ``None`` if never registered."""
    note = conn.execute(
        select(notes_t.c.id, notes_t.c.serial, notes_t.c.denomination, notes_t.c.place,
               notes_t.c.valid_until, desks_t.c.code.label("desk_code"),
               series_t.c.code.label("series_code"))
        .select_from(notes_t.join(series_t, series_t.c.id == notes_t.c.series_id)
                     .outerjoin(desks_t, desks_t.c.id == notes_t.c.desk_id))
        .where(notes_t.c.serial == serial.strip().upper())
    ).first()
    if note is None:
        return None, []
    moves = conn.execute(
        select(moves_t.c.at, moves_t.c.reason, moves_t.c.from_place, moves_t.c.to_place,
               moves_t.c.entry_id, moves_t.c.memo, users_t.c.username,
               parties_t.c.code.label("party_code"))
        .select_from(items_t.join(moves_t, moves_t.c.id == items_t.c.move_id)
                     .outerjoin(users_t, users_t.c.id == moves_t.c.actor_user_id)
                     .outerjoin(parties_t, parties_t.c.id == moves_t.c.party_id))
        .where(items_t.c.note_id == note.id)
        .order_by(moves_t.c.id)
    ).all()
    return note, moves


def entry_notes(conn: Connection, entry_id: int,
                to_place: str | None = None) -> list[tuple[int, int, list[str]]]:
    """(denomination, count, serials) an entry moved (to ``to_place`` if given)."""
    query = (
        select(notes_t.c.denomination, notes_t.c.serial)
        .select_from(moves_t.join(items_t, items_t.c.move_id == moves_t.c.id)
                     .join(notes_t, notes_t.c.id == items_t.c.note_id))
        .where(moves_t.c.entry_id == entry_id)
        .order_by(notes_t.c.denomination.desc(), notes_t.c.serial)
    )
    if to_place is not None:
        query = query.where(moves_t.c.to_place == to_place)
    rows = conn.execute(query).all()
    grouped: dict[int, list[str]] = {}
    for row in rows:
        grouped.setdefault(row.denomination, []).append(row.serial)
    return [(d, len(s), s) for d, s in grouped.items()]

