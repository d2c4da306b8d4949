"""A member's own statement: filtered history, today's takings, receipts, the CSV export
for the accountant. No Flask here.

Every line is one entry seen from the party's side: the sum of the entry's postings on
the party's accounts in one currency (a reconversion is two lines: Bou'Sols out, euros
owed in). Dates typed by people are Europe/Paris days, turned into UTC bounds: "du
22/11/2026" starts at 22/11/2026 00:00 Paris time (23:00 UTC the day before in winter),
"au 22/11/2026" includes the whole of that Paris day. Amounts are integer cents
throughout; the CSV writes them from integers, never through a float.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, literal, or_, select, union_all

from bousol.ledger.books import account_days
from bousol.ledger.books.models import Account, Entry, Party, Posting
from bousol.ledger.books.queries import KIND_LABELS as _QUERY_KIND_LABELS
from bousol.ledger.kernel import inputs, money
from bousol.ledger.kernel.clock import PARIS, as_utc, paris_today
from bousol.ledger.kernel.errors import InvalidDate, InvalidInput
from bousol.ledger.kernel.text import N_

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
parties_t = Party.__table__

# Every kind a member's statement can show. queries.KIND_LABELS names the first ones;
# the kinds added since (desk, refunds) are named here, and queries' wins if it has them.
KIND_LABELS: dict[str, str] = {
    "membership_fee": N_("Cotisation annuelle"),
    "note_deposit": N_("Dépôt de billets"),
    "note_reactivation": N_("Réactivation de billets"),
    "refund": N_("Remboursement"),
    **_QUERY_KIND_LABELS,
}

# The kinds offered by the statement's "type" filter, in this order.
FILTER_KINDS = ("payment", "exchange", "refund", "reconversion", "note_deposit", "payout",
                "reversal")
DIRECTIONS = ("in", "out")
Q_MAX = 100
CSV_MAX_LINES = 100_000  # one export; a longer history is exported by periods


def kind_label(kind: str) -> str:
    """The French label of an entry kind (untranslated: the caller translates)."""
    return KIND_LABELS.get(kind, kind)


# ---------------------------------------------------------------- parsing the filters

_DATE_FR = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")
_DATE_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def parse_date(value: object) -> dt.date | None:
    """``22/11/2026`` or ``2026-11-22`` → a date; blank → None; else ``invalid_date``."""
    if value is None or isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise InvalidDate()
    text = value.strip()
    if not text:
        return None
    if match := _DATE_FR.fullmatch(text):
        day, month, year = (int(g) for g in match.groups())
    elif match := _DATE_ISO.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
    else:
        raise InvalidDate(f"Date invalide : « {text[:20]} » (jj/mm/aaaa).", value=text[:20])
    try:
        parsed = dt.date(year, month, day)
    except ValueError:
        raise InvalidDate(f"Cette date n'existe pas : « {text[:20]} ».",
                          value=text[:20]) from None
    if not 2000 <= parsed.year <= 2999:
        raise InvalidDate(f"Date hors limites : « {text[:20]} ».", value=text[:20])
    return parsed


def paris_day_start(day: dt.date) -> dt.datetime:
    """The UTC instant at which this Paris day begins."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)


def paris_bounds(date_from: dt.date | None,
                 date_to: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``[start, end)`` in UTC for Paris days ``date_from`` … ``date_to`` (inclusive)."""
    start = paris_day_start(date_from) if date_from else None
    end = paris_day_start(date_to + dt.timedelta(days=1)) if date_to else None
    return start, end


@dataclass(frozen=True)
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    kind: str | None = None
    direction: str | None = None
    q: str | None = None

    @property
    def active(self) -> bool:
        return any((self.date_from, self.date_to, self.kind, self.direction, self.q))


def parse_filters(*, date_from: object = None, date_to: object = None, kind: object = None,
                  direction: object = None, q: object = None) -> Filters:
    """Check the filters typed in a form; each refusal says which filter is wrong
    (``details["field"]``: ``date_from``, ``date_to``, ``kind``, ``direction``, ``q``)."""

    def refuse(error, name: str):
        error.details["field"] = name
        return error

    try:
        start = parse_date(date_from)
    except InvalidDate as error:
        raise refuse(error, "date_from") from None
    try:
        end = parse_date(date_to)
    except InvalidDate as error:
        raise refuse(error, "date_to") from None
    if start and end and start > end:
        raise refuse(InvalidDate("La date de fin précède la date de début."), "date_to")
    kind_value = (kind or "").strip() if isinstance(kind, str) else kind
    if kind_value and kind_value not in KIND_LABELS:
        raise refuse(InvalidInput("Type d'opération inconnu."), "kind")
    direction_value = (direction or "").strip() if isinstance(direction, str) else direction
    if direction_value and direction_value not in DIRECTIONS:
        raise refuse(InvalidInput("Sens inconnu : entrées ou sorties."), "direction")
    if q is not None and not isinstance(q, str):
        raise refuse(InvalidInput("Recherche invalide."), "q")
    text = (q or "").strip()
    if len(text) > Q_MAX:
        raise refuse(InvalidInput(f"Recherche trop longue (au plus {Q_MAX} caractères)."), "q")
    if any(ord(c) < 32 for c in text):
        raise refuse(InvalidInput("La recherche contient des caractères non imprimables."), "q")
    # Past the checks, a value left is one of the known strings.
    return Filters(start, end, str(kind_value) if kind_value else None,
                   str(direction_value) if direction_value else None, text or None)


# ---------------------------------------------------------------- the statement


@dataclass(frozen=True)
class Line:
    entry_id: int
    kind: str
    created_at: dt.datetime  # UTC
    memo: str | None
    currency: str
    amount: int  # signed cents, from the party's side: + came in, − went out
    counterparty_code: str | None  # None: the bank (exchange, reconversion, payout…)
    counterparty_name: str | None
    reverses_id: int | None

    @property
    def counterparty(self) -> str | None:
        """``P-000001 Boulangerie …`` (as queries.StatementLine), or None for the bank."""
        if self.counterparty_code is None:
            return None
        return f"{self.counterparty_code} {self.counterparty_name}"

    @property
    def kind_label(self) -> str:
        return kind_label(self.kind)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _other_party_postings(party_id: int):
    """Postings of an entry on another member's account (not a system account)."""
    other_accounts = accounts_t.alias("other_accounts")
    other_parties = parties_t.alias("other_parties")
    other_postings = postings_t.alias("other_postings")
    return other_postings, other_accounts, other_parties, (
        select(literal(1))
        .select_from(other_postings
                     .join(other_accounts, other_accounts.c.id == other_postings.c.account_id)
                     .join(other_parties, other_parties.c.id == other_accounts.c.party_id))
        .where(other_postings.c.entry_id == entries_t.c.id,
               other_parties.c.id != party_id,
               other_accounts.c.system_code.is_(None))
    )


# A page scans the party's postings newest first, a batch of entries at a time, through
# the index (account_id, entry_id): its cost is the page's size, however long the
# history. A filter that matches rarely (a word, a kind) could walk the whole history
# to fill one page; so a page looks at SCAN_MAX entries at most and then stops, with a
# link that goes on from where it stopped ("the search went back to entry n°…").
SCAN_MAX = 20_000
_BATCH_MAX = 5_000


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    next_before: int | None  # the entry id to ask "older than" for the next page
    scan_stopped: bool = False  # SCAN_MAX reached: older lines may still match


def statement(
    conn: Connection,
    party_id: int,
    *,
    date_from: dt.date | str | None = None,
    date_to: dt.date | str | None = None,
    kind: str | None = None,
    direction: str | None = None,
    q: str | None = None,
    limit: int | None = 50,
    before_entry_id: int | None = None,
) -> list[Line]:
    """The party's lines, newest first, filtered.

    ``date_from``/``date_to``: Paris days, inclusive (dates or typed text);
    ``kind``: an entry kind; ``direction``: ``in`` (amount > 0) or ``out`` (< 0);
    ``q``: text in the memo or in the counterparty's name or code (case-insensitive);
    ``before_entry_id``: only entries older than this one (the next page).
    ``limit`` counts lines but never splits an entry's two lines (a reconversion: the
    Bou'Sols and the euros), so a page may hold one line more; None: no limit.
    Every matching line is returned (no scan limit: the CSV export uses it).
    """
    filters = parse_filters(date_from=date_from, date_to=date_to, kind=kind,
                            direction=direction, q=q)
    return _scan(conn, party_id, filters, limit=limit, before_entry_id=before_entry_id,
                 scan_max=None).lines


def statement_page(conn: Connection, party_id: int, filters: Filters, *, limit: int = 50,
                   before_entry_id: int | None = None, scan_max: int | None = SCAN_MAX) -> Page:
    """One page of the statement, and where the next one starts."""
    return _scan(conn, party_id, filters, limit=limit, before_entry_id=before_entry_id,
                 scan_max=scan_max)


def _scan(conn: Connection, party_id: int, filters: Filters, *, limit: int | None,
          before_entry_id: int | None, scan_max: int | None) -> Page:
    account_ids = list(conn.execute(
        select(accounts_t.c.id).where(accounts_t.c.party_id == party_id)).scalars())
    low = high = None
    if filters.date_from or filters.date_to:
        # The days' entry range, from the maintained figures: the scan starts there.
        span = account_days.entry_range(conn, account_ids, filters.date_from,
                                        filters.date_to)
        if span is None:
            return Page([], None)
        low, high = span
    cursor = before_entry_id if high is None else min(before_entry_id or high + 1, high + 1)
    batch = max((limit or 0) + 1, 20) if limit is not None else _BATCH_MAX
    rows: list = []
    scanned = 0
    while True:
        if scan_max is not None:
            batch = max(1, min(batch, scan_max - scanned))
        ids = _newest_entries(conn, account_ids, before=cursor, low=low, n=batch)
        if not ids:
            return _page(conn, party_id, rows, limit, next_before=None)
        rows.extend(_lines_of(conn, party_id, ids, filters))
        scanned += len(ids)
        cursor = ids[-1]
        if limit is not None and len(rows) > limit and rows[-1].id != rows[limit - 1].id:
            return _page(conn, party_id, rows, limit, next_before=rows[limit - 1].id)
        if len(ids) < batch:
            return _page(conn, party_id, rows, limit, next_before=None)
        if scan_max is not None and scanned >= scan_max:
            page = _page(conn, party_id, rows, limit, next_before=cursor)
            return Page(page.lines, cursor, scan_stopped=True)
        batch = min(batch * 4, _BATCH_MAX)


def _newest_entries(conn: Connection, account_ids: list[int], *, before: int | None,
                    low: int | None, n: int) -> list[int]:
    """The ``n`` newest entry ids (below ``before``, from ``low`` on) on the accounts,
    newest first: one index range per account, merged (each is its own LIMIT, so no
    account's whole history is ever read)."""
    per_account = []
    for account_id in account_ids:
        query = (select(postings_t.c.entry_id)
                 .where(postings_t.c.account_id == account_id)
                 .order_by(postings_t.c.entry_id.desc()).limit(n))
        if before is not None:
            query = query.where(postings_t.c.entry_id < before)
        if low is not None:
            query = query.where(postings_t.c.entry_id >= low)
        per_account.append(query)
    if not per_account:
        return []
    if len(per_account) == 1:
        found = conn.execute(per_account[0]).scalars().all()
    else:
        union = union_all(*(q.subquery().select() for q in per_account)).subquery()
        found = conn.execute(select(union.c.entry_id)).scalars().all()
    return sorted(set(found), reverse=True)[:n]


def _lines_of(conn: Connection, party_id: int, entry_ids: list[int], filters: Filters):
    """The party's lines of these entries that pass the filters, newest first."""
    amount = func.sum(postings_t.c.amount)
    query = (
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
               entries_t.c.reverses_id, postings_t.c.currency, amount.label("amount"))
        .select_from(
            postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id)
            .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        )
        .where(accounts_t.c.party_id == party_id, postings_t.c.entry_id.in_(entry_ids))
        .group_by(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
                  entries_t.c.reverses_id, postings_t.c.currency)
        .order_by(entries_t.c.id.desc(), postings_t.c.currency)
    )
    start, end = paris_bounds(filters.date_from, filters.date_to)
    if start is not None:
        query = query.where(entries_t.c.created_at >= start)
    if end is not None:
        query = query.where(entries_t.c.created_at < end)
    if filters.kind:
        query = query.where(entries_t.c.kind == filters.kind)
    if filters.direction == "in":
        query = query.having(amount > 0)
    elif filters.direction == "out":
        query = query.having(amount < 0)
    if filters.q:
        pattern = _like(filters.q)
        _p, _a, other_parties, others = _other_party_postings(party_id)
        query = query.where(or_(
            func.lower(func.coalesce(entries_t.c.memo, "")).like(pattern, escape="\\"),
            others.where(or_(
                func.lower(other_parties.c.name).like(pattern, escape="\\"),
                func.lower(other_parties.c.code).like(pattern, escape="\\"),
            )).exists(),
        ))
    return conn.execute(query).all()


def _page(conn: Connection, party_id: int, rows: list, limit: int | None, *,
          next_before: int | None) -> Page:
    if limit is not None and len(rows) > limit:
        keep = rows[:limit]
        keep.extend(r for r in rows[limit:] if r.id == keep[-1].id)
        rows = keep
    others_by_entry = counterparties(conn, [r.id for r in rows], party_id)
    lines = []
    for r in rows:
        other_code, other_name = others_by_entry.get(r.id, (None, None))
        lines.append(Line(r.id, r.kind, r.created_at, r.memo, r.currency, int(r.amount),
                          other_code, other_name, r.reverses_id))
    return Page(lines, next_before)


def counterparties(conn: Connection, entry_ids: list[int],
                   party_id: int) -> dict[int, tuple[str, str]]:
    """The other member of each entry (code, name); none when it is the bank's alone."""
    if not entry_ids:
        return {}
    rows = conn.execute(
        select(postings_t.c.entry_id, parties_t.c.code, parties_t.c.name)
        .select_from(
            postings_t.join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
            .join(parties_t, parties_t.c.id == accounts_t.c.party_id)
        )
        .where(postings_t.c.entry_id.in_(entry_ids), parties_t.c.id != party_id,
               accounts_t.c.system_code.is_(None))
        .order_by(postings_t.c.id.desc())  # the first posting's party wins
    ).all()
    return {r.entry_id: (r.code, r.name) for r in rows}


# ---------------------------------------------------------------- today's takings


@dataclass(frozen=True)
class Takings:
    day: dt.date
    payments_count: int
    payments_cents: int  # Bou'Sols received in payments
    refunds_count: int
    refunds_cents: int  # Bou'Sols given back in refunds (positive)

    @property
    def net_cents(self) -> int:
        return self.payments_cents - self.refunds_cents


def takings_today(conn: Connection, party_id: int, today: dt.date | None = None) -> Takings:
    """Payments received and refunds given on one Paris day (today by default), from
    the maintained daily figures (one row per account and kind: never the journal)."""
    day = today or paris_today()
    accounts = list(conn.execute(
        select(accounts_t.c.id).where(accounts_t.c.party_id == party_id,
                                      accounts_t.c.currency == "BSOL")).scalars())
    found = account_days.figures(conn, accounts, day, ("payment", "refund"))
    payments = found.get("payment", account_days.DayFigures())
    refunds = found.get("refund", account_days.DayFigures())
    return Takings(day, payments.in_count, payments.in_cents, refunds.out_count,
                   refunds.out_cents)


# ---------------------------------------------------------------- a receipt


@dataclass(frozen=True)
class Receipt:
    entry_id: int
    kind: str
    created_at: dt.datetime
    memo: str | None
    amounts: dict[str, int] = field(default_factory=dict)  # currency → signed cents
    counterparty_code: str | None = None
    counterparty_name: str | None = None
    reverses_id: int | None = None  # this entry cancels that one
    reversed_by_id: int | None = None  # this entry was cancelled by that one

    @property
    def amount(self) -> int:
        """The Bou'Sol amount if the entry moved any, else the euros."""
        return self.amounts.get("BSOL", self.amounts.get("EUR", 0))

    @property
    def currency(self) -> str:
        return "BSOL" if "BSOL" in self.amounts else "EUR"

    @property
    def kind_label(self) -> str:
        return kind_label(self.kind)


def receipt(conn: Connection, party_id: int, entry_id: int) -> Receipt | None:
    """The entry as this party sees it, or None unless it touches one of its accounts
    (another member's entry is as unknown as a missing one)."""
    if not inputs.is_database_id(entry_id, maximum=2**62 - 1):
        return None
    rows = conn.execute(
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
               entries_t.c.reverses_id, postings_t.c.currency,
               func.sum(postings_t.c.amount).label("amount"))
        .select_from(
            postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id)
            .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
        )
        .where(entries_t.c.id == entry_id, accounts_t.c.party_id == party_id)
        .group_by(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at, entries_t.c.memo,
                  entries_t.c.reverses_id, postings_t.c.currency)
        .order_by(postings_t.c.currency)  # BSOL before EUR
    ).all()
    if not rows:
        return None
    first = rows[0]
    other = counterparties(conn, [entry_id], party_id).get(entry_id, (None, None))
    reversed_by = conn.execute(
        select(entries_t.c.id).where(entries_t.c.reverses_id == entry_id)
    ).scalar_one_or_none()
    return Receipt(first.id, first.kind, first.created_at, first.memo,
                   {r.currency: int(r.amount) for r in rows}, other[0], other[1],
                   first.reverses_id, reversed_by)


# ---------------------------------------------------------------- CSV for the accountant

CSV_HEADER = (
    "Date", "Heure", "Date et heure (ISO 8601)", "N° d'écriture", "Opération",
    "Code contrepartie", "Contrepartie", "Libellé", "Montant", "Montant (machine)", "Devise",
)
CURRENCY_CODES = {"BSOL": "BSOL", "EUR": "EUR"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str | None) -> str:
    """Text a spreadsheet will not run: a cell starting like a formula (= + - @, tab,
    carriage return) gets a leading apostrophe (OWASP's advice against CSV injection)."""
    value = text or ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def amount_fr(cents: int) -> str:
    """``-1234,50``: French decimal comma, no thousands separator (a spreadsheet reads it)."""
    return money.format_plain(cents).replace(".", ",")


def operation_label(line: Line) -> str:
    label = kind_label(line.kind)
    if line.reverses_id:
        label = f"{label} (écriture {line.reverses_id})"
    return label


def statement_csv(lines: list[Line]) -> str:
    """The lines as a CSV for the accountant: UTF-8 with a BOM (so Excel reads the
    accents), ``;`` separated, a header row, CRLF line ends. Dates in Paris time."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        local = as_utc(line.created_at).astimezone(PARIS)
        writer.writerow((
            local.strftime("%d/%m/%Y"),
            local.strftime("%H:%M:%S"),
            local.replace(microsecond=0).isoformat(),
            str(line.entry_id),
            safe_cell(operation_label(line)),
            safe_cell(line.counterparty_code or ""),
            safe_cell(line.counterparty_name or ("Banque SOL" if line.counterparty_code
                                                 is None else "")),
            safe_cell(line.memo),
            amount_fr(line.amount),  # ours: digits, comma, maybe a minus sign
            money.format_plain(line.amount),
            CURRENCY_CODES.get(line.currency, line.currency),
        ))
    return out.getvalue()


def csv_filename(party_code: str, filters: Filters, today: dt.date | None = None) -> str:
    """``releve-P-000001-2026-11-01-au-2026-11-30.csv`` (the dates of the export)."""
    start = filters.date_from.isoformat() if filters.date_from else "debut"
    end = (filters.date_to or today or paris_today()).isoformat()
    return f"releve-{party_code}-{start}-au-{end}.csv"
