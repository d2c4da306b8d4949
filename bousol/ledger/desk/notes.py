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

from bousol.ledger.books import hooks
from bousol.ledger.books.models import Party, SystemAccount, User
from bousol.ledger.books.verify import Check, system_balance
from bousol.ledger.desk.models import (
    NOTE_DENOMINATIONS,
    Desk,
    Note,
    NoteMove,
    NoteMoveItem,
    NotePlace,
    NoteSeries,
)
from bousol.ledger.kernel import inputs, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import (
    InvalidInput,
    MoveNotAllowed,
    NoDesk,
    NoteExpired,
    NoteNotAvailable,
    NotReversible,
    SerialExists,
    UnknownSerial,
)
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.rows import Rows
from bousol.ledger.kernel.uow import UnitOfWork

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


def desks(conn: Connection) -> Rows:
    return conn.execute(
        select(desks_t.c.id, desks_t.c.code, desks_t.c.name)
        .where(desks_t.c.active).order_by(desks_t.c.code)
    ).all()


# ---------------------------------------------------------------- moves


def _record_move(conn: Connection, actor: Actor, *, reason: str, notes: Rows,
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
    memo = inputs.memo(memo)
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
    memo = inputs.memo(memo)
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


def series_list(conn: Connection) -> Rows:
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


# ---------------------------------------------------------------- what the books consult


def _refuse_reversal_of_note_moves(conn, candidate: hooks.ReversalCandidate) -> None:
    """The notes moved with the entry: the clerk makes the inverse operation with the
    paper in hand (a deposit, a new exchange), so the stock follows the books."""
    moves = NoteMove.__table__
    if conn.execute(select(moves.c.id).where(moves.c.entry_id == candidate.entry_id)
                    .limit(1)).first():
        raise NotReversible("Cette opération a déplacé des billets : faites l'opération "
                            "inverse au comptoir, billets en main, plutôt qu'une "
                            "contre-passation.")


def _notes_match_the_stock(conn) -> Check:
    """The notes in circulation in the ledger are the notes the stock says are out."""
    balance = system_balance(conn, SystemAccount.NOTES_CIRCULATION)
    face = circulation_face_cents(conn)
    return Check(
        "billets en circulation = stock", balance == face,
        f"compte {money.format_plain(balance)} B, billets en circulation selon le "
        f"stock {money.format_plain(face)} B",
        [] if balance == face
        else [f"écart de {money.format_plain(balance - face)} B entre le compte et le stock"],
    )


hooks.reversal_guard(_refuse_reversal_of_note_moves)
hooks.invariant(_notes_match_the_stock)
