"""The cash closing (clôture de caisse) of the exchange desk.

At the end of the business day (the calendar day in Europe/Paris) the clerk counts the
drawer by denomination, totals the cheques and reads the card terminal's report. The
ledger says what it expects; the difference is booked, never hidden; what goes to the
bank is handed to the reserve; and the closed day cannot be changed.

A closing covers every entry with an id above the previous closing's ``last_entry_id``
(0 for the first one) up to the last entry at closing time. The rules are named in
docs/ledger.md, "Clôture de caisse":

- **Expected cash** = the float left by the previous closing + cash received (exchanges
  and fees, net of their reversals) − cash handed to the reserve meanwhile
  (``cash_deposit`` entries) + any other movement of ``desk_cash``. **Expected
  cheques** = cheques received. **Expected card** = card payments received. The euros
  received by an entry are minus its posting on ``eur_outside``; its tender is in its
  details; a reversal takes the tender of the entry it reverses.
- Fees (membership, note reactivation) are booked to ``fees_income`` when taken, though
  their cash lies in the drawer: they are counted in the drawer, then handed to the
  association, not to the reserve.
- **Discrepancy** = counted − expected over cash, cheques and card, booked as one
  ``cash_discrepancy`` entry against the ``cash_discrepancy`` account: the drawer's part
  on ``desk_cash`` (a shortfall beyond what ``desk_cash`` holds falls on ``fees_income``:
  that cash was the fees), the card part on ``eur_reserve`` (card payments are settled
  there). A non-zero discrepancy needs the clerk's comment.
- **Deposit** = cash and cheques counted − float kept − the period's fees (cash and
  cheques): one ``cash_deposit`` entry, ``desk_cash`` → ``eur_reserve``. Afterwards
  ``desk_cash`` holds exactly the float kept (checked before commit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, case, func, insert, select

from bousol.ledger.books import hooks
from bousol.ledger.books.models import Account, Entry, Posting, SystemAccount, User
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.desk.models import CashClosing, CashClosingReopening
from bousol.ledger.kernel import clock, money
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import DomainError, InvalidInput, NotReversible
from bousol.ledger.kernel.rows import Rows
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.kernel.uow import UnitOfWork

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
closings_t, users_t = CashClosing.__table__, User.__table__
reopenings_t = CashClosingReopening.__table__
REASON_MIN, REASON_MAX = 3, 500

# Euro notes and coins the clerk counts, in cents, largest first.
NOTE_CENTS = (50_000, 20_000, 10_000, 5_000, 2_000, 1_000, 500)
COIN_CENTS = (200, 100, 50, 20, 10, 5, 2, 1)
DENOMINATIONS = NOTE_CENTS + COIN_CENTS
COUNT_MAX = 100_000  # pieces of one denomination; more is a typing mistake
COMMENT_MAX = 1000

TENDERS = ("cash", "cheque", "card")  # what the drawer and the terminal hold
EXCHANGE_KINDS = frozenset({"exchange"})
FEE_KINDS = frozenset({"membership_fee", "note_reactivation"})
DEPOSIT_KIND = "cash_deposit"
DISCREPANCY_KIND = "cash_discrepancy"

_ZERO_RE = re.compile(r"0+(?:[.,]0{0,2})?")


class DayClosed(DomainError):
    code = "day_closed"
    http_status = 409
    default_message = ("La journée est clôturée : la caisse n'encaisse plus rien "
                       "jusqu'à demain.")


class CommentRequired(DomainError):
    code = "comment_required"
    default_message = ("La caisse n'est pas juste : expliquez l'écart dans le "
                       "commentaire.")


class FloatTooLarge(DomainError):
    code = "float_too_large"
    default_message = ("Le fonds de caisse gardé ne peut pas dépasser les espèces "
                       "comptées.")


class ClosingInconsistent(DomainError):
    code = "closing_inconsistent"
    http_status = 409
    default_message = ("Le solde du compte de caisse ne correspond pas aux opérations "
                       "de la journée : appelez un administrateur avant de clôturer.")


class ExpectedChanged(DomainError):
    code = "closing_expected_changed"
    http_status = 409
    default_message = ("De nouvelles opérations ont été enregistrées depuis la "
                       "vérification : vérifiez à nouveau le comptage.")


class ClosingNotReopenable(DomainError):
    code = "closing_not_reopenable"
    http_status = 409
    default_message = ("Seule la dernière clôture, celle d'aujourd'hui, peut être "
                       "rouverte, une fois.")


class UnknownClosing(DomainError):
    code = "unknown_closing"
    http_status = 404
    default_message = "Clôture introuvable."


# The desk's business day: open → closed by the clerk's count; closed → open again
# when an admin reopens it (by mistake closed too early), then closed again. Nothing
# else: a day is never closed twice without a reopening in between.
class DayState:
    OPEN = "open"
    CLOSED = "closed"


TRANSITIONS: dict[tuple[str, str], str] = {
    (DayState.OPEN, "close"): DayState.CLOSED,
    (DayState.CLOSED, "reopen"): DayState.OPEN,
}
MACHINE = StateMachine(TRANSITIONS, lambda _state, action: (
    DayClosed() if action == "close" else ClosingNotReopenable()))


def next_state(state: str, action: str) -> str:
    """The state after ``action``, or the refusal of that action in ``state``."""
    return MACHINE.next(state, action)


def _not_reopened():
    return ~select(reopenings_t.c.id).where(
        reopenings_t.c.closing_id == closings_t.c.id).exists()


def business_today() -> dt.date:
    """The business day is the calendar day in Boulogne-sur-Mer. Tests replace it to
    freeze the clock."""
    return clock.paris_today()


# ------------------------------------------------------------------ what is expected


@dataclass(frozen=True)
class Expected:
    business_date: dt.date
    previous_date: dt.date | None  # the last closing, if any
    after_entry_id: int  # the period starts after this entry (the previous cutoff)
    upto_entry_id: int  # … and ends with this one (the last entry now)
    float_cents: int  # left in the drawer by the previous closing
    received: dict[str, dict[str, int]]  # tender → {"exchanges": c, "fees": c}
    cheque_entries: int  # cheques received net of reversed ones (for the count)
    deposited_cents: int  # cash handed to the reserve since the previous closing
    other_desk_cents: int  # any other movement of desk_cash (normally 0)
    desk_cash_balance: int  # what the ledger's desk_cash account holds now

    def tender_total(self, tender: str) -> int:
        return sum(self.received[tender].values())

    @property
    def cash_cents(self) -> int:
        return (self.float_cents + self.tender_total("cash") - self.deposited_cents
                + self.other_desk_cents)

    @property
    def cheque_cents(self) -> int:
        return self.tender_total("cheque")

    @property
    def card_cents(self) -> int:
        return self.tender_total("card")

    @property
    def fees_in_drawer_cents(self) -> int:
        """Cash and cheque fees: in the drawer, but already the association's income."""
        return self.received["cash"]["fees"] + self.received["cheque"]["fees"]

    @property
    def desk_cash_expected(self) -> int:
        """What desk_cash should hold: the drawer less the fees (booked to fees_income)."""
        return (self.float_cents + self.received["cash"]["exchanges"]
                + self.received["cheque"]["exchanges"] - self.deposited_cents
                + self.other_desk_cents)

    @property
    def consistent(self) -> bool:
        return self.desk_cash_balance == self.desk_cash_expected


def _system_id(conn: Connection, code: SystemAccount) -> int:
    return conn.execute(
        select(accounts_t.c.id).where(accounts_t.c.system_code == code.value)).scalar_one()


def _last_closing(conn: Connection):
    """The latest closing that still stands (a reopened one was undone: its entries are
    reversed, so the next count starts again from the closing before it)."""
    return conn.execute(
        select(closings_t.c.business_date, closings_t.c.last_entry_id,
               closings_t.c.float_cents)
        .where(_not_reopened())
        .order_by(closings_t.c.business_date.desc(), closings_t.c.sequence.desc()).limit(1)
    ).first()


def _tender_of(details: str | None) -> str | None:
    try:
        tender = json.loads(details or "{}").get("tender")
    except (ValueError, AttributeError):
        return None
    return tender if tender in TENDERS else None


def expected(conn: Connection, *, today: dt.date | None = None) -> Expected:
    """What the drawer and the terminal should show now, explained by source."""
    today = today or business_today()
    last = _last_closing(conn)
    after = last.last_entry_id if last else 0
    float_cents = last.float_cents if last else 0
    upto = conn.execute(select(func.coalesce(func.max(entries_t.c.id), 0))).scalar_one()
    outside = _system_id(conn, SystemAccount.EUR_OUTSIDE)
    desk = _system_id(conn, SystemAccount.DESK_CASH)
    rows = conn.execute(
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.details,
               entries_t.c.reverses_id,
               func.sum(case((postings_t.c.account_id == outside, postings_t.c.amount),
                             else_=0)).label("outside"),
               func.sum(case((postings_t.c.account_id == desk, postings_t.c.amount),
                             else_=0)).label("desk"))
        .select_from(entries_t.join(postings_t, postings_t.c.entry_id == entries_t.c.id))
        # The range is on the postings' entry_id: the index (account_id, entry_id)
        # then reads the two accounts' postings since the last closing, and nothing
        # of the day's payments, which touch neither.
        .where(postings_t.c.entry_id > after, postings_t.c.entry_id <= upto,
               postings_t.c.account_id.in_([outside, desk]))
        .group_by(entries_t.c.id, entries_t.c.kind, entries_t.c.details,
                  entries_t.c.reverses_id)
    ).all()
    originals = {}
    reversed_ids = [r.reverses_id for r in rows if r.kind == "reversal" and r.reverses_id]
    if reversed_ids:
        originals = {r.id: r for r in conn.execute(
            select(entries_t.c.id, entries_t.c.kind, entries_t.c.details)
            .where(entries_t.c.id.in_(reversed_ids))).all()}
    received = {tender: {"exchanges": 0, "fees": 0} for tender in TENDERS}
    cheques = deposited = other = 0
    for row in rows:
        kind, details, sign = row.kind, row.details, 1
        if kind == "reversal" and row.reverses_id in originals:
            original = originals[row.reverses_id]
            kind, details, sign = original.kind, original.details, -1
        tender = _tender_of(details)
        euros, desk_moved = -int(row.outside), int(row.desk)
        if kind in EXCHANGE_KINDS | FEE_KINDS and tender is not None:
            received[tender]["exchanges" if kind in EXCHANGE_KINDS else "fees"] += euros
            cheques += sign if tender == "cheque" else 0
            # An exchange in cash or cheque put the same euros into desk_cash; card
            # exchanges and fees did not touch it. Anything else is shown apart.
            into_desk = euros if kind in EXCHANGE_KINDS and tender != "card" else 0
            other += desk_moved - into_desk
        elif kind == DEPOSIT_KIND:
            deposited -= desk_moved
        else:
            other += desk_moved
    desk_balance = conn.execute(
        select(accounts_t.c.balance).where(accounts_t.c.id == desk)).scalar_one()
    return Expected(today, last.business_date if last else None, after, int(upto),
                    float_cents, received, cheques, deposited, other, int(desk_balance))


@dataclass(frozen=True)
class Plan:
    """What a count means for the books: the differences, where they are booked, and
    what goes to the reserve and to the association."""

    drawer_diff: int  # cash + cheques counted − expected (+ surplus, − shortfall)
    card_diff: int  # terminal's total − card payments booked
    desk_part: int  # of drawer_diff, booked on desk_cash
    fees_part: int  # of drawer_diff, booked on fees_income (a shortfall beyond desk_cash)
    deposit: int  # handed to the reserve; negative: the float kept is too large
    fees_handed: int  # cash and cheques of the fees, handed to the association

    @property
    def discrepancy(self) -> int:
        return self.drawer_diff + self.card_diff


def plan(exp: Expected, *, cash_cents: int, cheque_cents: int, card_cents: int,
         float_cents: int) -> Plan:
    drawer_diff = cash_cents + cheque_cents - exp.cash_cents - exp.cheque_cents
    # A shortfall comes out of desk_cash first; beyond what it holds, out of the fees
    # (the cash missing was theirs). A surplus goes into desk_cash.
    desk_part = max(drawer_diff, -exp.desk_cash_balance)
    # Counted (cash + cheques) − float − the period's fees, which is also what
    # desk_cash holds after the discrepancy, less the float: desk_cash ends at the float.
    deposit = exp.desk_cash_balance + desk_part - float_cents
    return Plan(drawer_diff, card_cents - exp.card_cents, desk_part, drawer_diff - desk_part,
                deposit, cash_cents + cheque_cents - float_cents - deposit)


# ------------------------------------------------------------------ the desk is open?


def ensure_desk_open(conn: Connection, today: dt.date | None = None) -> None:
    """Refuse (``day_closed``) once today's closing is made: the drawer is counted.

    Operations call it after locking their accounts, so a closing that committed
    meanwhile is seen (it holds the same locks until it commits)."""
    if day_state(conn, today or business_today()) == DayState.CLOSED:
        raise DayClosed()


def day_state(conn: Connection, day: dt.date) -> str:
    """Closed while a closing of that day (or a later one) stands, not reopened."""
    closed = conn.execute(
        select(closings_t.c.id).where(closings_t.c.business_date >= day, _not_reopened())
        .limit(1)
    ).first()
    return DayState.OPEN if closed is None else DayState.CLOSED


# ------------------------------------------------------------------ counting


def parse_counts(counts: Mapping[object, object]) -> dict[int, int]:
    """Denomination (cents) → pieces counted: integers 0…100 000, known denominations."""
    if not isinstance(counts, Mapping):
        raise InvalidInput("Comptage invalide.")
    parsed = dict.fromkeys(DENOMINATIONS, 0)
    for key, value in counts.items():
        try:
            denomination = int(key) if not isinstance(key, bool | float) else None
        except (TypeError, ValueError):
            denomination = None
        if denomination not in parsed:
            raise InvalidInput("Coupure inconnue.")
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
            raise InvalidInput("Nombre de pièces ou de billets invalide (un entier entre "
                                  "0 et 100 000).")
        parsed[denomination] = value
    return parsed


def counted_cents(counts: Mapping[int, int]) -> int:
    return sum(denomination * count for denomination, count in counts.items())


def parse_cents(value: object) -> int:
    """An amount that may be zero (a blank field, ``0``, ``0,00``), else as
    :func:`money.parse_amount` (positive, two decimals at most, no float)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, str) and _ZERO_RE.fullmatch(value.strip()):
        return 0
    if isinstance(value, int | Decimal) and not isinstance(value, bool) and value == 0:
        return 0
    return money.parse_amount(value)


def _comment(text: object) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > COMMENT_MAX:
        raise InvalidInput("Commentaire trop long (au plus 1000 caractères).")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\r\t" for c in text):
        raise InvalidInput("Le commentaire contient des caractères non imprimables.")
    return text.strip() or None


def _cheque_count(value: object) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COUNT_MAX:
        raise InvalidInput("Nombre de chèques invalide.")
    return value


# ------------------------------------------------------------------ closing


@dataclass(frozen=True)
class ClosingResult:
    closing_id: int
    business_date: dt.date
    discrepancy_cents: int  # counted − expected, all tenders (+ surplus, − shortfall)
    deposited_cents: int
    float_cents: int
    discrepancy_entry_id: int | None
    deposit_entry_id: int | None


def close_day(
    uow: UnitOfWork,
    actor: Actor,
    *,
    counts: Mapping[object, object],
    cheque_count: object = 0,
    cheque_total: object = 0,
    card_total: object = 0,
    float_kept: object = 0,
    comment: str | None = None,
    today: dt.date | None = None,
    seen: tuple[int, int, int] | None = None,
) -> ClosingResult:
    """Close the business day: book the difference, hand the takings to the reserve,
    keep the float, and record the count (append-only). Once per business date.

    ``seen``: the expected (cash, cheques, card) the clerk was shown; if operations
    changed them since, the closing is refused (``closing_expected_changed``)."""
    actor.require(Role.BANK, Role.ADMIN)
    parsed = parse_counts(counts)
    cash_cents = counted_cents(parsed)
    n_cheques = _cheque_count(cheque_count)
    cheque_cents, card_cents = parse_cents(cheque_total), parse_cents(card_total)
    float_cents = parse_cents(float_kept)
    comment = _comment(comment)
    today = today or business_today()
    if float_cents > cash_cents:
        raise FloatTooLarge()
    with uow:
        conn = uow.conn
        # Every desk operation locks at least one of these accounts before it writes its
        # entry (cash and cheque exchanges desk_cash, card exchanges and reversals of
        # them eur_reserve, fees fees_income), and checks ensure_desk_open after its
        # lock. So, while the closing holds them: no desk entry is half-written below
        # the cutoff read next, none can be written until the closing commits, and then
        # it sees the closing and is refused. (SQLite: BEGIN IMMEDIATE serialises all.)
        locked = lock_accounts(conn, system=(
            SystemAccount.DESK_CASH, SystemAccount.EUR_RESERVE, SystemAccount.FEES_INCOME,
            SystemAccount.CASH_DISCREPANCY))
        next_state(day_state(conn, today), "close")  # day_closed once closed
        exp = expected(conn, today=today)
        if not exp.consistent:
            raise ClosingInconsistent(expected=exp.desk_cash_expected,
                                      balance=exp.desk_cash_balance)
        if seen is not None and seen != (exp.cash_cents, exp.cheque_cents, exp.card_cents):
            raise ExpectedChanged()
        figures = plan(exp, cash_cents=cash_cents, cheque_cents=cheque_cents,
                       card_cents=card_cents, float_cents=float_cents)
        if figures.discrepancy and not comment:
            raise CommentRequired()
        if figures.deposit < 0:
            # What remains counted is the fees' money, the association's, not a float.
            raise FloatTooLarge("Le fonds de caisse gardé dépasse ce que la caisse "
                                "détient hors cotisations.")

        desk = locked.system(SystemAccount.DESK_CASH)
        reserve = locked.system(SystemAccount.EUR_RESERVE)
        fees = locked.system(SystemAccount.FEES_INCOME)
        discrepancy = figures.discrepancy
        discrepancy_entry = None
        if discrepancy:
            legs = [Leg(account, amount) for account, amount in
                    ((desk, figures.desk_part), (fees, figures.fees_part),
                     (reserve, figures.card_diff)) if amount]
            legs.append(Leg(locked.system(SystemAccount.CASH_DISCREPANCY), -discrepancy))
            discrepancy_entry = post(
                conn, kind=DISCREPANCY_KIND, legs=legs, actor_user_id=actor.user_id,
                memo=f"Écart de caisse — clôture du {today:%d/%m/%Y}",
                details={"business_date": today.isoformat(), "drawer": figures.drawer_diff,
                         "card": figures.card_diff},
            )
        desk_after = desk.balance + figures.desk_part
        deposit = figures.deposit
        deposit_entry = None
        if deposit:
            deposit_entry = post(
                conn, kind=DEPOSIT_KIND,
                legs=[Leg(dataclasses.replace(desk, balance=desk_after), -deposit),
                      Leg(reserve, deposit)],
                actor_user_id=actor.user_id,
                memo=f"Remise de la clôture du {today:%d/%m/%Y}",
                details={"business_date": today.isoformat()},
            )
        final = conn.execute(
            select(accounts_t.c.balance).where(accounts_t.c.id == desk.id)).scalar_one()
        if final != float_cents:  # the books and the drawer part company: write nothing
            raise RuntimeError(f"desk_cash {final} after closing, float {float_cents}")
        last_entry = max(e for e in (exp.upto_entry_id, discrepancy_entry, deposit_entry)
                         if e is not None)
        # A day reopened by an admin is closed again under the next sequence.
        sequence = 1 + conn.execute(
            select(func.coalesce(func.max(closings_t.c.sequence), 0))
            .where(closings_t.c.business_date == today)).scalar_one()
        closing_id = conn.execute(
            insert(closings_t).values(
                business_date=today, sequence=sequence, closed_at=clock.now(),
                closed_by_user_id=actor.user_id, last_entry_id=last_entry,
                expected_cash_cents=exp.cash_cents, counted_cash_cents=cash_cents,
                expected_cheque_cents=exp.cheque_cents, counted_cheque_cents=cheque_cents,
                cheque_count=n_cheques, expected_card_cents=exp.card_cents,
                counted_card_cents=card_cents, discrepancy_cents=discrepancy,
                float_cents=float_cents, deposited_cents=deposit,
                counts=json.dumps({str(k): v for k, v in parsed.items() if v}),
                comment=comment, discrepancy_entry_id=discrepancy_entry,
                deposit_entry_id=deposit_entry,
            ).returning(closings_t.c.id)
        ).scalar_one()
        uow.commit()
    return ClosingResult(closing_id, today, discrepancy, deposit, float_cents,
                         discrepancy_entry, deposit_entry)


# ------------------------------------------------------------------ reading


_reopener = users_t.alias("reopener")
_report_columns = (*closings_t.c, users_t.c.username.label("clerk"),
                   reopenings_t.c.reopened_at, reopenings_t.c.reason.label("reopen_reason"),
                   _reopener.c.username.label("reopened_by"))
_report_from = (
    closings_t.outerjoin(users_t, users_t.c.id == closings_t.c.closed_by_user_id)
    .outerjoin(reopenings_t, reopenings_t.c.closing_id == closings_t.c.id)
    .outerjoin(_reopener, _reopener.c.id == reopenings_t.c.reopened_by_user_id))


def history(conn: Connection, limit: int = 60) -> Rows:
    """The latest closings, newest first (reopened ones too, with who, when and why)."""
    return conn.execute(
        select(*_report_columns).select_from(_report_from)
        .order_by(closings_t.c.business_date.desc(), closings_t.c.sequence.desc())
        .limit(limit)
    ).all()


def get(conn: Connection, closing_id: int):
    return conn.execute(
        select(*_report_columns).select_from(_report_from)
        .where(closings_t.c.id == closing_id)
    ).first()


def for_date(conn: Connection, day: dt.date):
    """The closing that keeps ``day`` closed (None: the day is open)."""
    return conn.execute(
        select(closings_t.c.id).where(closings_t.c.business_date == day, _not_reopened())
        .order_by(closings_t.c.sequence.desc()).limit(1)).scalar()


# ------------------------------------------------------------------ reopening


@dataclass(frozen=True)
class ReopeningResult:
    closing_id: int
    business_date: dt.date
    reversal_entry_ids: tuple[int, ...]


def _reason(text: object) -> str:
    if not isinstance(text, str) or not REASON_MIN <= len(text.strip()) <= REASON_MAX:
        raise InvalidInput(f"Donnez la raison de la réouverture ({REASON_MIN} à {REASON_MAX} "
                           "caractères).", field="reason")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\r\t" for c in text):
        raise InvalidInput("La raison contient des caractères non imprimables.",
                           field="reason")
    return text.strip()


def reopen_day(uow: UnitOfWork, actor: Actor, *, closing_id: int, reason: object,
               today: dt.date | None = None) -> ReopeningResult:
    """An admin reopens today's closing, closed by mistake: its discrepancy and deposit
    entries are reversed (the drawer is as before the count: the next closing counts the
    whole day again from the previous float), the reopening is recorded with its reason
    (append-only, once per closing), and the desk takes money again."""
    actor.require(Role.ADMIN)
    reason = _reason(reason)
    today = today or business_today()
    with uow:
        conn = uow.conn
        # The locks of close_day: a closing or a desk operation waits for the reopening.
        locked = lock_accounts(conn, system=(
            SystemAccount.DESK_CASH, SystemAccount.EUR_RESERVE, SystemAccount.FEES_INCOME,
            SystemAccount.CASH_DISCREPANCY))
        row = conn.execute(select(closings_t).where(closings_t.c.id == closing_id)).first()
        if row is None:
            raise UnknownClosing()
        if row.business_date != today or for_date(conn, today) != closing_id:
            raise ClosingNotReopenable()  # an earlier day, or reopened already
        next_state(day_state(conn, today), "reopen")
        counted = [e for e in (row.discrepancy_entry_id, row.deposit_entry_id) if e is not None]
        if counted and conn.execute(select(entries_t.c.id).where(
                entries_t.c.reverses_id.in_(counted)).limit(1)).first():
            # operations.reverse refuses a closing's entries, so only a hand-made fix in
            # the database gets here: refuse clearly rather than trip the unique key.
            raise ClosingNotReopenable()
        by_id = {r.id: r for r in locked.rows}
        reversals = []
        for entry_id in (row.discrepancy_entry_id, row.deposit_entry_id):
            if entry_id is None:
                continue
            legs = conn.execute(select(postings_t.c.account_id, postings_t.c.amount)
                                .where(postings_t.c.entry_id == entry_id)
                                .order_by(postings_t.c.id)).all()
            reversals.append(post(
                conn, kind="reversal",
                legs=[Leg(by_id[leg.account_id], -leg.amount) for leg in legs],
                actor_user_id=actor.user_id, reverses_id=entry_id,
                memo=f"Réouverture de la clôture du {today:%d/%m/%Y}",
            ))
            # post() moved the balances: the next entry starts from the new ones.
            by_id = {r.id: r for r in lock_accounts(conn, account_ids=tuple(by_id)).rows}
        conn.execute(insert(reopenings_t).values(
            closing_id=closing_id, reopened_at=clock.now(), reopened_by_user_id=actor.user_id,
            reason=reason))
        uow.commit()
    return ReopeningResult(closing_id, today, tuple(reversals))


def counts_of(row) -> list[tuple[int, int]]:
    """A closing's counts as (denomination cents, pieces), largest first, all of them."""
    stored = {int(k): v for k, v in json.loads(row.counts or "{}").items()}
    return [(d, stored.get(d, 0)) for d in DENOMINATIONS]


# ---------------------------------------------------------------- what the books consult

# A counted drawer is a fact: neither its discrepancy entry nor its deposit is undone.
_CLOSING_IS_FINAL = "Une clôture de caisse ne se modifie pas."


def _refuse_reversal_of_a_deposit(conn, candidate: hooks.ReversalCandidate) -> None:
    closings = CashClosing.__table__
    if conn.execute(select(closings.c.id)
                    .where(closings.c.deposit_entry_id == candidate.entry_id).limit(1)).first():
        raise NotReversible(_CLOSING_IS_FINAL)


hooks.irreversible_kind(DISCREPANCY_KIND, _CLOSING_IS_FINAL)
hooks.reversal_guard(_refuse_reversal_of_a_deposit)
