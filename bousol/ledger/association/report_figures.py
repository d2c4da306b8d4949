"""The activity report's figures, kept in each entry's own transaction (issue 18).

``posting.post`` calls :func:`record` (registered with ``hooks.after_post``) once an
entry's postings are written; it adds the entry to three tables (models in
``association/models.py``, docs/reports.md "Maintained figures"):

- ``report_day_flows``: per Paris day, kind of entry, kind of account (a system code,
  or ``''`` for the members' Bou'Sol accounts) and channel, the net of the postings and
  how many entries moved it: the money supply at a month's end is their running sum;
- ``report_month_parties``: per Paris month and party, the payments, B2B, aid vouchers
  and refunds of a prestataire, the CCAS's aid to solistes, a soliste's payments made,
  as the report defines them (a reversed payment taken off its own month);
- ``report_months``: the distinct active solistes and prestataires per month, moved
  when a party's row crosses zero.

A payment costs one statement more (an upsert of its two parties' rows, whose RETURNING
says whether the month's active counts move: one more statement, the first time in a
month only). :func:`compute` recomputes the same figures from the journal with the
same rules (:func:`contributions`), for :func:`rebuild` (a migration, the benchmark's
bulk load) and for ``verify``'s invariant, optionally over a period only.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from bousol.ledger.association.models import ReportDayFlow, ReportMonth, ReportMonthParty
from bousol.ledger.books import hooks
from bousol.ledger.books.account_days import paris_day
from bousol.ledger.books.models import Account, Entry, Party, PartyKind, Posting
from bousol.ledger.books.verify import Check
from bousol.ledger.ccas import voucher_codes
from bousol.ledger.ccas.models import Voucher, VoucherRedemption
from bousol.ledger.kernel.clock import PARIS, as_utc
from bousol.ledger.kernel.driver_sql import DriverStatement

flows_t, parties_fig_t = ReportDayFlow.__table__, ReportMonthParty.__table__
months_t = ReportMonth.__table__
entries_t, postings_t, accounts_t = Entry.__table__, Posting.__table__, Account.__table__
parties_t, vouchers_t, redemptions_t = Party.__table__, Voucher.__table__, \
    VoucherRedemption.__table__

MEMBERS = ""  # the code of the members' Bou'Sol accounts in report_day_flows
CHANNELS = frozenset({"cash", "cheque", "card", "transfer"})  # a desk operation's tender
REQUEST = "request"  # a payment made through a payment request (the till's QR code)

# The columns of report_month_parties, in the order of a contribution's vector.
COLUMNS = ("purchases_count", "purchases_cents", "b2b_count", "b2b_cents", "paper_count",
           "paper_cents", "earmarked_count", "earmarked_cents", "refunds_count",
           "refunds_cents", "refunds_b2b_count", "refunds_b2b_cents", "aid_count",
           "aid_cents", "spent_count")
_AT = {name: i for i, name in enumerate(COLUMNS)}
_RECEIVED = tuple(_AT[c] for c in ("purchases_count", "b2b_count", "paper_count",
                                   "earmarked_count"))
_SPENT = _AT["spent_count"]

_PRESTATAIRE, _SOLISTE = PartyKind.PRESTATAIRE.value, PartyKind.SOLISTE.value
_CCAS = PartyKind.CCAS.value


# ---------------------------------------------------------------- the rules


@dataclass(frozen=True, slots=True)
class LegFacts:
    amount: int
    system_code: str | None
    currency: str
    party_id: int | None
    party_kind: str | None


@dataclass(frozen=True, slots=True)
class EntryFacts:
    kind: str
    created_at: dt.datetime
    legs: tuple[LegFacts, ...]
    details: dict | None = None
    reversed_kind: str | None = None  # a reversal: the entry it reverses
    reversed_at: dt.datetime | None = None
    voucher_soliste_id: int | None = None  # a voucher redemption: the earmarked soliste


@dataclass
class Figures:
    """Figures to add (or, recomputed, to compare): the three tables' rows by key."""

    flows: dict[tuple[dt.date, str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))  # [entries, cents]
    parties: dict[tuple[str, dt.date, int], list[int]] = field(  # (kind, month, party)
        default_factory=lambda: defaultdict(lambda: [0] * len(COLUMNS)))
    months: dict[dt.date, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))  # [solistes, prestataires]


def channel_of(details: dict | None) -> str:
    """A desk operation's tender (cash, cheque, card, transfer), ``request`` for a
    payment through a payment request, else ``''``."""
    if not details:
        return ""
    tender = details.get("tender")
    if isinstance(tender, str) and tender in CHANNELS:
        return tender
    if details.get("payment_request") is not None:
        return REQUEST
    return ""


def _pairs(legs: Sequence[LegFacts]) -> Iterator[tuple[LegFacts, LegFacts]]:
    """(payer, payee) for every negative and positive leg on parties' accounts: the
    report's reading of a two-legged entry."""
    outs = [g for g in legs if g.amount < 0 and g.system_code is None and g.party_id]
    ins = [g for g in legs if g.amount > 0 and g.system_code is None and g.party_id]
    for out in outs:
        for into in ins:
            yield out, into


def contributions(facts: EntryFacts, figures: Figures) -> None:
    """Add what one entry contributes to the figures (the rules of reports.py)."""
    day = paris_day(facts.created_at)
    nets: dict[str, int] = defaultdict(int)
    for leg in facts.legs:
        if leg.system_code is not None:
            nets[leg.system_code] += leg.amount
        elif leg.currency == "BSOL":
            nets[MEMBERS] += leg.amount
    channel = channel_of(facts.details)
    for code, net in nets.items():
        if net:
            line = figures.flows[(day, facts.kind, code, channel)]
            line[0] += 1
            line[1] += net

    if facts.kind == "payment":
        _payment(figures, day.replace(day=1), facts.legs, 1)
    elif facts.kind == "reversal" and facts.reversed_kind == "payment":
        assert facts.reversed_at is not None
        original = tuple(LegFacts(-g.amount, g.system_code, g.currency, g.party_id,
                                  g.party_kind) for g in facts.legs)
        _payment(figures, paris_day(facts.reversed_at).replace(day=1), original, -1)
    elif facts.kind == "refund":
        month = day.replace(day=1)
        for shop, customer in _pairs(facts.legs):
            if shop.party_kind != _PRESTATAIRE:
                continue
            name = "refunds_b2b" if customer.party_kind == _PRESTATAIRE else "refunds"
            _add(figures, month, shop.party_id, name, 1, customer.amount)
    elif facts.kind == "voucher_redemption":
        month = day.replace(day=1)
        for leg in facts.legs:
            if leg.amount > 0 and leg.system_code is None and leg.party_kind == _PRESTATAIRE:
                if facts.voucher_soliste_id is not None:
                    _add(figures, month, leg.party_id, "earmarked", 1, leg.amount)
                    _add(figures, month, facts.voucher_soliste_id, "spent", 1)
                else:
                    _add(figures, month, leg.party_id, "paper", 1, leg.amount)


def _payment(figures: Figures, month: dt.date, legs: Sequence[LegFacts], sign: int) -> None:
    for payer, payee in _pairs(legs):
        if payee.party_kind == _PRESTATAIRE:
            name = "b2b" if payer.party_kind == _PRESTATAIRE else "purchases"
            _add(figures, month, payee.party_id, name, sign, sign * payee.amount)
            if payer.party_kind == _SOLISTE:
                _add(figures, month, payer.party_id, "spent", sign)
        elif payer.party_kind == _CCAS and payee.party_kind == _SOLISTE:
            _add(figures, month, payer.party_id, "aid", sign, sign * payee.amount)


def _add(figures: Figures, month: dt.date, party_id: int | None, name: str, count: int,
         cents: int | None = None) -> None:
    assert party_id is not None
    kind = _SOLISTE if name == "spent" else _CCAS if name == "aid" else _PRESTATAIRE
    line = figures.parties[(kind, month, party_id)]
    line[_AT[f"{name}_count"]] += count
    if cents is not None:
        line[_AT[f"{name}_cents"]] += cents


def _received(line: Sequence[int]) -> int:
    return sum(line[i] for i in _RECEIVED)


# ---------------------------------------------------------------- kept per entry


def _dialect_insert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


@functools.cache
def _flow_upsert(dialect: str) -> DriverStatement:
    columns = ("day", "kind", "code", "channel", "entries", "cents")
    stmt = _dialect_insert(dialect)(flows_t).values({c: bindparam(c) for c in columns})
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "kind", "code", "channel"],
        set_={c: flows_t.c[c] + stmt.excluded[c] for c in ("entries", "cents")})
    return DriverStatement(stmt)


@functools.cache
def _party_upsert(dialect: str, rows: int) -> DriverStatement:
    """One statement for the ``rows`` parties of an entry; RETURNING each party's
    counts after the change, so that the caller sees a row cross zero."""
    names = ("party_kind", "month", "party_id", *COLUMNS)
    stmt = _dialect_insert(dialect)(parties_fig_t).values(
        [{c: bindparam(f"{c}_{i}") for c in names} for i in range(rows)])
    stmt = stmt.on_conflict_do_update(
        index_elements=["party_kind", "month", "party_id"],
        set_={c: parties_fig_t.c[c] + stmt.excluded[c] for c in COLUMNS})
    return DriverStatement(stmt.returning(parties_fig_t.c.party_id, _received_sum,
                                          parties_fig_t.c.spent_count))


@functools.cache
def _month_upsert(dialect: str) -> DriverStatement:
    columns = ("month", "active_solistes", "active_prestataires")
    stmt = _dialect_insert(dialect)(months_t).values({c: bindparam(c) for c in columns})
    stmt = stmt.on_conflict_do_update(
        index_elements=["month"],
        set_={c: months_t.c[c] + stmt.excluded[c] for c in columns[1:]})
    return DriverStatement(stmt)


_received_sum = sum((parties_fig_t.c[COLUMNS[i]] for i in _RECEIVED[1:]),
                    parties_fig_t.c[COLUMNS[_RECEIVED[0]]])
_party_update = (
    update(parties_fig_t)
    .where(parties_fig_t.c.party_kind == bindparam("k"),
           parties_fig_t.c.month == bindparam("m"), parties_fig_t.c.party_id == bindparam("p"))
    .values({c: parties_fig_t.c[c] + bindparam(f"d_{c}") for c in COLUMNS})
    .returning(parties_fig_t.c.party_id, _received_sum, parties_fig_t.c.spent_count)
)
_month_update = (
    update(months_t).where(months_t.c.month == bindparam("m"))
    .values(active_solistes=months_t.c.active_solistes + bindparam("s"),
            active_prestataires=months_t.c.active_prestataires + bindparam("p"))
)


def _date(conn: Connection, day: dt.date) -> dt.date | str:
    return day.isoformat() if conn.dialect.name == "sqlite" else day


def _facts_of(conn: Connection, posted: hooks.PostedEntry) -> EntryFacts:
    legs = tuple(LegFacts(leg.amount, leg.account.system_code, leg.account.currency,
                          leg.account.party_id, leg.account.party_kind)
                 for leg in posted.legs)
    reversed_kind = reversed_at = soliste = None
    if posted.kind == "reversal" and posted.reverses_id is not None:
        row = conn.execute(select(entries_t.c.kind, entries_t.c.created_at)
                           .where(entries_t.c.id == posted.reverses_id)).one()
        reversed_kind, reversed_at = row.kind, row.created_at
    elif posted.kind == "voucher_redemption" and posted.details:
        body = voucher_codes.parse(posted.details["voucher"])
        soliste = conn.execute(select(vouchers_t.c.soliste_party_id)
                               .where(vouchers_t.c.code == body)).scalar_one()
    return EntryFacts(posted.kind, posted.created_at, legs, posted.details, reversed_kind,
                      reversed_at, soliste)


def record(conn: Connection, posted: hooks.PostedEntry) -> None:
    """Add one entry just posted to the figures, in its transaction."""
    if posted.kind not in _KINDS_WITH_PARTIES and not any(
            leg.account.system_code is not None for leg in posted.legs):
        return  # moves money between members only, and no figure of the report's
    figures = Figures()
    contributions(_facts_of(conn, posted), figures)
    dialect = conn.dialect.name
    if figures.flows:
        _flow_upsert(dialect).executemany(conn, [
            {"day": _date(conn, day), "kind": kind, "code": code, "channel": channel,
             "entries": entries, "cents": cents}
            for (day, kind, code, channel), (entries, cents) in figures.flows.items()])
    if not figures.parties:
        return
    params: dict[str, object] = {}
    deltas: dict[int, tuple[dt.date, list[int]]] = {}  # a party has one kind
    for i, ((kind, month, party_id), line) in enumerate(figures.parties.items()):
        params[f"party_kind_{i}"] = kind
        params[f"month_{i}"] = _date(conn, month)
        params[f"party_id_{i}"] = party_id
        params.update({f"{c}_{i}": line[j] for j, c in enumerate(COLUMNS)})
        deltas[party_id] = (month, line)
    if any(v < 0 for _key, line in figures.parties.items() for v in line):
        # A reversal takes a payment off rows that exist: an UPDATE (the proposed row of
        # an upsert would fail the CHECKs before it met its conflict).
        after: list[tuple] = [tuple(conn.execute(_party_update, {
            "k": kind, "m": month, "p": party_id,
            **{f"d_{c}": line[j] for j, c in enumerate(COLUMNS)}}).one())
            for (kind, month, party_id), line in figures.parties.items()]
    else:
        after = _party_upsert(dialect, len(figures.parties)).rows(conn, params)
    moved: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for party_id, received, spent in after:
        month, line = deltas[party_id]
        moved[month][0] += _crossed(int(spent), line[_SPENT])
        moved[month][1] += _crossed(int(received), _received(line))
    for month, (solistes, prestataires) in moved.items():
        if solistes < 0 or prestataires < 0:
            conn.execute(_month_update, {"m": month, "s": solistes, "p": prestataires})
        elif solistes or prestataires:
            _month_upsert(dialect).execute(conn, {
                "month": _date(conn, month), "active_solistes": solistes,
                "active_prestataires": prestataires})


def _crossed(after: int, delta: int) -> int:
    """+1 when a count rose from zero, −1 when it fell to zero, else 0."""
    before = after - delta
    return (after > 0) - (before > 0)


_KINDS_WITH_PARTIES = frozenset({"payment", "reversal", "refund", "voucher_redemption"})

hooks.after_post(record)


# ---------------------------------------------------------------- from the journal


def month_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.date, dt.date]:
    """The whole months a period covers: (first day of the first, first day after)."""
    first = date_from.replace(day=1)
    after = (date_to.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, after


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)


def _journal(conn: Connection, span: tuple[dt.date, dt.date] | None,
             batch: int = 20_000) -> Iterator[EntryFacts]:
    """Every entry (or those a span of whole months holds, and the reversals of its
    payments wherever they are) as :class:`EntryFacts`, in id order."""
    original = entries_t.alias("original")
    payer = parties_t.alias("leg_party")
    query = (
        select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at,
               entries_t.c.details, original.c.kind, original.c.created_at,
               vouchers_t.c.soliste_party_id, postings_t.c.amount,
               accounts_t.c.system_code, accounts_t.c.currency, accounts_t.c.party_id,
               payer.c.kind)
        .select_from(
            entries_t
            .join(postings_t, postings_t.c.entry_id == entries_t.c.id)
            .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
            .outerjoin(payer, payer.c.id == accounts_t.c.party_id)
            .outerjoin(original, original.c.id == entries_t.c.reverses_id)
            .outerjoin(redemptions_t, redemptions_t.c.entry_id == entries_t.c.id)
            .outerjoin(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id))
        .order_by(entries_t.c.id, postings_t.c.id)
    )
    if span is None:
        yield from _stream(conn, query, batch)
        return
    # Two index range scans rather than one OR over two tables: the entries of the
    # span, then the reversals made outside it of the span's entries.
    start, end = _utc(span[0]), _utc(span[1])
    inside = and_(entries_t.c.created_at >= start, entries_t.c.created_at < end)
    yield from _stream(conn, query.where(inside), batch)
    yield from _stream(conn, query.where(
        entries_t.c.kind == "reversal", original.c.created_at >= start,
        original.c.created_at < end, ~inside), batch)


def _stream(conn: Connection, query, batch: int) -> Iterator[EntryFacts]:
    current: int | None = None
    head: tuple = ()
    legs: list[LegFacts] = []

    def facts() -> EntryFacts:
        _id, kind, at, details, r_kind, r_at, soliste = head
        parsed = json.loads(details) if details else None
        return EntryFacts(kind, as_utc(at), tuple(legs), parsed, r_kind,
                          as_utc(r_at) if r_at is not None else None, soliste)

    result = conn.execute(query.execution_options(yield_per=batch))
    for row in result:
        if row[0] != current:
            if current is not None:
                yield facts()
            current, head, legs = row[0], tuple(row[:7]), []
        legs.append(LegFacts(int(row[7]), row[8], row[9], row[10], row[11]))
    if current is not None:
        yield facts()


def compute(conn: Connection, date_from: dt.date | None = None,
            date_to: dt.date | None = None, *, in_python: bool = False) -> Figures:
    """The figures recomputed from the journal: all of them, or those of the whole
    months from ``date_from`` to ``date_to`` (Paris days). On PostgreSQL by three
    set-based queries (:func:`_compute_sql`, the same rules in SQL); on SQLite, or with
    ``in_python``, entry by entry through :func:`contributions`."""
    span = None if date_from is None or date_to is None else month_bounds(date_from,
                                                                           date_to)
    if conn.dialect.name == "postgresql" and not in_python:
        figures = _compute_sql(conn, span)
    else:
        figures = Figures()
        for facts in _journal(conn, span):
            contributions(facts, figures)
    if span is not None:
        figures.flows = {k: v for k, v in figures.flows.items()
                         if span[0] <= k[0] < span[1]}
        figures.parties = {k: v for k, v in figures.parties.items()
                           if span[0] <= k[1] < span[1]}
    for (_kind, month, _party), line in figures.parties.items():
        counts = figures.months[month]
        counts[0] += line[_SPENT] > 0
        counts[1] += _received(line) > 0
    figures.flows = {k: v for k, v in figures.flows.items() if v[0]}
    figures.parties = {k: v for k, v in figures.parties.items() if any(v)}
    figures.months = {k: v for k, v in figures.months.items() if any(v)}
    return figures


# The same rules as contributions(), in PostgreSQL (days and months in Europe/Paris).
_PARIS_DAY = "((e.created_at AT TIME ZONE 'Europe/Paris')::date)"
_PARIS_MONTH = "(date_trunc('month', {at} AT TIME ZONE 'Europe/Paris')::date)"
_CHANNEL = f"""CASE
  WHEN e.details IS NULL THEN ''
  WHEN (e.details::jsonb ->> 'tender') IN ({", ".join(f"'{c}'" for c in sorted(CHANNELS))})
    THEN e.details::jsonb ->> 'tender'
  WHEN coalesce(jsonb_typeof(e.details::jsonb -> 'payment_request'), 'null') <> 'null'
    THEN '{REQUEST}'
  ELSE '' END"""
# The entries read: the table itself (the planner then sees its statistics), or a span.
_ALL_ENTRIES = "entries"
_SPAN_ENTRIES = """(SELECT id, kind, created_at, details, reverses_id FROM entries
  WHERE created_at >= :start AND created_at < :end
UNION ALL
SELECT r.id, r.kind, r.created_at, r.details, r.reverses_id
  FROM entries r JOIN entries o ON o.id = r.reverses_id
  WHERE r.kind = 'reversal' AND o.created_at >= :start AND o.created_at < :end
    AND NOT (r.created_at >= :start AND r.created_at < :end))"""
_PARTY_LEGS = """(SELECT p.entry_id, p.amount, a.party_id, pa.kind AS pkind
   FROM postings p JOIN accounts a ON a.id = p.account_id
   JOIN parties pa ON pa.id = a.party_id WHERE a.system_code IS NULL)"""
_FLOWS_SQL = f"""SELECT day, kind, code, channel, count(*), sum(net) FROM (
  SELECT {_PARIS_DAY} AS day, e.kind, coalesce(a.system_code, '') AS code,
         {_CHANNEL} AS channel, sum(p.amount) AS net
  FROM {{entries}} e JOIN postings p ON p.entry_id = e.id
  JOIN accounts a ON a.id = p.account_id
  WHERE a.system_code IS NOT NULL OR a.currency = 'BSOL'
  GROUP BY e.id, 1, 2, 3, 4) per_entry
WHERE net <> 0 GROUP BY 1, 2, 3, 4"""  # noqa: S608 (this module's constants only)
_PARTIES_SQL = f"""WITH pay AS (
  SELECT e.id, {_PARIS_MONTH.format(at="e.created_at")} AS month, 1 AS s
    FROM {{entries}} e WHERE e.kind = 'payment'
  UNION ALL
  SELECT e.id, {_PARIS_MONTH.format(at="o.created_at")}, -1
    FROM {{entries}} e JOIN entries o ON o.id = e.reverses_id
    WHERE e.kind = 'reversal' AND o.kind = 'payment'),
lines AS (
  SELECT x.pkind, pay.month, x.party_id, x.col, x.n, x.c
  FROM pay
  JOIN {_PARTY_LEGS} o ON o.entry_id = pay.id AND o.amount * pay.s < 0
  JOIN {_PARTY_LEGS} i ON i.entry_id = pay.id AND i.amount * pay.s > 0
  CROSS JOIN LATERAL (VALUES
    (CASE WHEN i.pkind = 'prestataire' THEN 'prestataire' END, i.party_id,
     CASE WHEN o.pkind = 'prestataire' THEN 'b2b' ELSE 'purchases' END, pay.s,
     i.amount),
    (CASE WHEN i.pkind = 'prestataire' AND o.pkind = 'soliste' THEN 'soliste' END,
     o.party_id, 'spent', pay.s, 0),
    (CASE WHEN o.pkind = 'ccas' AND i.pkind = 'soliste' THEN 'ccas' END, o.party_id,
     'aid', pay.s, i.amount)
  ) AS x(pkind, party_id, col, n, c)  -- c: the payee's leg, negative in a reversal
  WHERE x.pkind IS NOT NULL
  UNION ALL
  SELECT 'prestataire', {_PARIS_MONTH.format(at="e.created_at")}, o.party_id,
         CASE WHEN i.pkind = 'prestataire' THEN 'refunds_b2b' ELSE 'refunds' END, 1,
         i.amount
  FROM {{entries}} e JOIN {_PARTY_LEGS} o ON o.entry_id = e.id AND o.amount < 0
  JOIN {_PARTY_LEGS} i ON i.entry_id = e.id AND i.amount > 0
  WHERE e.kind = 'refund' AND o.pkind = 'prestataire'
  UNION ALL
  SELECT x.pkind, {_PARIS_MONTH.format(at="e.created_at")}, x.party_id, x.col, 1, x.c
  FROM {{entries}} e JOIN {_PARTY_LEGS} l ON l.entry_id = e.id AND l.amount > 0
                              AND l.pkind = 'prestataire'
  LEFT JOIN voucher_redemptions r ON r.entry_id = e.id
  LEFT JOIN vouchers v ON v.id = r.voucher_id
  CROSS JOIN LATERAL (VALUES
    ('prestataire', l.party_id,
     CASE WHEN v.soliste_party_id IS NULL THEN 'paper' ELSE 'earmarked' END, l.amount),
    (CASE WHEN v.soliste_party_id IS NOT NULL THEN 'soliste' END, v.soliste_party_id,
     'spent', 0)
  ) AS x(pkind, party_id, col, c)
  WHERE e.kind = 'voucher_redemption' AND x.pkind IS NOT NULL)
SELECT pkind, month, party_id, {{sums}} FROM lines GROUP BY 1, 2, 3"""  # noqa: S608


def _pivot_sums() -> str:
    sums = []
    for column in COLUMNS:
        name, part = column.rsplit("_", 1)
        value = "n" if part == "count" else "c"
        sums.append(f"sum(CASE WHEN col = '{name}' THEN {value} ELSE 0 END)")
    return ", ".join(sums)


def _compute_sql(conn: Connection, span: tuple[dt.date, dt.date] | None) -> Figures:
    # The SQL is made of this module's constants only; the values go as parameters.
    entries = _ALL_ENTRIES if span is None else _SPAN_ENTRIES
    params = {} if span is None else {"start": _utc(span[0]), "end": _utc(span[1])}
    figures = Figures()
    for day, kind, code, channel, count, net in conn.execute(
            text(_FLOWS_SQL.format(entries=entries)), params):
        figures.flows[(_as_date(day), kind, code, channel)] = [int(count), int(net)]
    query = _PARTIES_SQL.format(entries=entries, sums=_pivot_sums())
    for row in conn.execute(text(query), params):
        figures.parties[(row[0], _as_date(row[1]), int(row[2]))] = [int(v) for v in row[3:]]
    return figures


def stored(conn: Connection, date_from: dt.date | None = None,
           date_to: dt.date | None = None) -> Figures:
    """The figures as the tables hold them (over the same whole months)."""
    span = None if date_from is None or date_to is None else month_bounds(date_from,
                                                                           date_to)

    def where(column):
        return [] if span is None else [column >= span[0], column < span[1]]

    figures = Figures()
    figures.flows = {
        (_as_date(r.day), r.kind, r.code, r.channel): [int(r.entries), int(r.cents)]
        for r in conn.execute(select(flows_t).where(*where(flows_t.c.day)))}
    figures.parties = {
        (r.party_kind, _as_date(r.month), int(r.party_id)):
            [int(r._mapping[c]) for c in COLUMNS]
        for r in conn.execute(select(parties_fig_t).where(*where(parties_fig_t.c.month)))}
    figures.months = {
        _as_date(r.month): [int(r.active_solistes), int(r.active_prestataires)]
        for r in conn.execute(select(months_t).where(*where(months_t.c.month)))}
    # Rows that a reversal brought back to zero say nothing.
    figures.parties = {k: v for k, v in figures.parties.items() if any(v)}
    figures.months = {k: v for k, v in figures.months.items() if any(v)}
    return figures


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def differences(expected: Figures, found: Figures) -> list[str]:
    """The keys whose figures differ, described (journal first, tables second)."""
    problems = []
    for name, labels in (("flows", "jour, nature, compte, canal"),
                         ("parties", "nature, mois, adhérent"), ("months", "mois")):
        want, have = getattr(expected, name), getattr(found, name)
        for key in sorted(set(want) | set(have), key=str):
            if list(want.get(key, ())) != list(have.get(key, ())):
                problems.append(f"{name} ({labels}) {_key_text(key)} : journal "
                                f"{list(want.get(key, []))}, agrégats {list(have.get(key, []))}")
    return problems


def _key_text(key) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    return "(" + ", ".join(p.isoformat() if isinstance(p, dt.date) else repr(p)
                           for p in parts) + ")"


def check(conn: Connection, date_from: dt.date | None = None,
          date_to: dt.date | None = None) -> Check:
    """``verify``'s line: the figures equal the journal (optionally over a period)."""
    problems = differences(compute(conn, date_from, date_to),
                           stored(conn, date_from, date_to))
    where = ("" if date_from is None or date_to is None
             else f" du {date_from:%d/%m/%Y} au {date_to:%d/%m/%Y}")
    shown = problems[:20] + ([f"… et {len(problems) - 20} autres"] if len(problems) > 20
                             else [])
    return Check("les agrégats des rapports égalent le journal", not problems,
                 f"{len(problems)} écart(s){where}" if problems
                 else f"agrégats des rapports recalculés du journal{where}", shown)


def _invariant(conn: Connection, scope: hooks.VerifyScope) -> Check:
    """The whole journal on a full run; otherwise the months of the entries after the
    last seal and the sealed months the run draws (each with the reversals of its
    payments, wherever they are)."""
    if scope.full or (scope.after_entry_id == 0 and not scope.months):
        return check(conn)
    spans: list[tuple[dt.date, dt.date]] = [
        month_bounds(m, m) for m in (_as_date(m) for m in scope.months)]
    first_new = conn.execute(select(func.min(entries_t.c.created_at))
                             .where(entries_t.c.id > scope.after_entry_id)).scalar()
    last_new = conn.execute(select(func.max(entries_t.c.created_at))
                            .where(entries_t.c.id > scope.after_entry_id)).scalar()
    if first_new is not None and last_new is not None:
        spans.append(month_bounds(paris_day(as_utc(first_new)), paris_day(as_utc(last_new))))
    # A new reversal of an older payment changed the payment's month.
    original = entries_t.alias("original")
    for (at,) in conn.execute(
            select(original.c.created_at)
            .join(entries_t, entries_t.c.reverses_id == original.c.id)
            .where(entries_t.c.id > scope.after_entry_id)):
        bounds = month_bounds(paris_day(as_utc(at)), paris_day(as_utc(at)))
        if not any(a <= bounds[0] and bounds[1] <= b for a, b in spans):
            spans.append(bounds)
    problems: list[str] = []
    for first, after in spans:
        last = after - dt.timedelta(days=1)
        problems += differences(compute(conn, first, last), stored(conn, first, last))
    shown = problems[:20] + ([f"… et {len(problems) - 20} autres"] if len(problems) > 20
                             else [])
    months = ", ".join(f"{first:%Y-%m}…{after - dt.timedelta(days=1):%Y-%m}"
                       for first, after in spans) or "aucun mois nouveau"
    return Check("les agrégats des rapports égalent le journal", not problems,
                 f"{len(problems)} écart(s) ({months})" if problems
                 else f"agrégats des rapports recalculés du journal ({months})", shown)


hooks.invariant(_invariant, scoped=True)


def rebuild(conn: Connection, date_from: dt.date | None = None,
            date_to: dt.date | None = None, *, batch: int = 5_000) -> None:
    """Recompute the figures from the journal and write them (all, or those of the
    whole months of a period), in the caller's transaction. On PostgreSQL the rows go
    from the journal's queries to the tables inside the server (``INSERT … SELECT``:
    the whole journal never passes through Python's memory)."""
    span = None if date_from is None or date_to is None else month_bounds(date_from,
                                                                           date_to)
    for table, column in ((flows_t, flows_t.c.day), (parties_fig_t, parties_fig_t.c.month),
                          (months_t, months_t.c.month)):
        conn.execute(delete(table).where(*([] if span is None
                                           else [column >= span[0], column < span[1]])))
    if conn.dialect.name == "postgresql":
        _rebuild_sql(conn, span)
        return
    figures = compute(conn, date_from, date_to)
    _insert(conn, flows_t, ({"day": d, "kind": k, "code": c, "channel": ch,
                             "entries": n, "cents": s}
                            for (d, k, c, ch), (n, s) in figures.flows.items()), batch)
    _insert(conn, parties_fig_t, ({"party_kind": k, "month": m, "party_id": p,
                                   **dict(zip(COLUMNS, line, strict=True))}
                                  for (k, m, p), line in figures.parties.items()), batch)
    _insert(conn, months_t, ({"month": m, "active_solistes": s, "active_prestataires": p}
                             for m, (s, p) in figures.months.items()), batch)


def _rebuild_sql(conn: Connection, span: tuple[dt.date, dt.date] | None) -> None:
    # This module's constants only (S608); the values go as parameters.
    entries = _ALL_ENTRIES if span is None else _SPAN_ENTRIES
    params: dict[str, object] = {} if span is None else {
        "start": _utc(span[0]), "end": _utc(span[1]), "first": span[0], "after": span[1]}
    in_span = "" if span is None else "AND {0} >= :first AND {0} < :after"
    flows = _FLOWS_SQL.format(entries=entries)
    conn.execute(text(
        "INSERT INTO report_day_flows (day, kind, code, channel, entries, cents) "  # noqa: S608
        f"SELECT * FROM ({flows}) f WHERE true {in_span.format('f.day')}"), params)
    parties = _PARTIES_SQL.format(entries=entries, sums=_pivot_sums())
    columns = ", ".join(COLUMNS)
    nonzero = " OR ".join(f"{c} <> 0" for c in COLUMNS)
    conn.execute(text(
        f"INSERT INTO report_month_parties (party_kind, month, party_id, {columns}) "  # noqa: S608
        f"SELECT * FROM ({parties}) f(party_kind, month, party_id, {columns}) "
        f"WHERE ({nonzero}) {in_span.format('f.month')}"), params)
    received = " + ".join(COLUMNS[i] for i in _RECEIVED)
    where = "" if span is None else "WHERE month >= :first AND month < :after"
    conn.execute(text(
        "INSERT INTO report_months (month, active_solistes, active_prestataires) "  # noqa: S608
        f"SELECT month, count(*) FILTER (WHERE spent_count > 0), "
        f"count(*) FILTER (WHERE {received} > 0) FROM report_month_parties {where} "
        f"GROUP BY month HAVING count(*) FILTER (WHERE spent_count > 0 OR {received} > 0) > 0"),
        params)


def _insert(conn: Connection, table, rows: Iterable[dict], batch: int) -> None:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= batch:
            conn.execute(insert(table), chunk)
            chunk = []
    if chunk:
        conn.execute(insert(table), chunk)


@hooks.facts_changed
def _derive_again(conn: Connection, entry_ids: list[int]) -> None:
    """Entries whose facts changed (the CCAS erased a beneficiary: its redemptions are
    no longer a soliste's): their months' figures are derived again from the journal,
    as the report would read them from it now."""
    days = conn.execute(select(entries_t.c.created_at)
                        .where(entries_t.c.id.in_(entry_ids))).scalars().all()
    for month in sorted({paris_day(day).replace(day=1) for day in days}):
        rebuild(conn, month, month)  # the whole month (rebuild's month_bounds)
