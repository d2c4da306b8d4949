"""Per-account daily figures, maintained with the entries (table ``account_days``).

A page never counts the journal: today's takings, the reserve's history and the entry
range of a day come from one row per (account, Paris day, kind of entry), written by
:func:`bousol.ledger.books.posting.post` in the entry's own transaction — one
``INSERT … ON CONFLICT DO UPDATE`` for all the accounts an entry moved. The accounts
are already locked by then (``SELECT … FOR UPDATE``), so the rows an entry updates are
its own accounts' and the upsert waits on nobody new.

The rules:

- the day is the Paris calendar day of the entry's ``created_at`` (the members' day,
  not UTC: a payment at 00:30 in Boulogne belongs to that day);
- an entry counts once per account, by the sign of what it did to that account: "in"
  (money in) or "out" (money out); its two legs on one account (never made today) would
  count as their sum;
- ``first_entry_id``/``last_entry_id`` bound the ids of that day's entries on that
  account: a statement filtered by dates scans its keyset index between them;
- a reversal is an entry of kind ``reversal`` on the day it was made: the original's day
  keeps its figures (the journal never changes what happened, and nor do these).

:func:`check` recomputes the figures from the journal (``verify``), :func:`rebuild`
rewrites them from it (a migration, the benchmark's bulk load).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from bousol.ledger.books import hooks
from bousol.ledger.books.models import Account, AccountDay, Entry, Posting
from bousol.ledger.kernel.clock import PARIS, as_utc
from bousol.ledger.kernel.driver_sql import DriverStatement

account_days_t = AccountDay.__table__
accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__

_COLUMNS = ("account_id", "day", "kind", "in_count", "in_cents", "out_count", "out_cents",
            "first_entry_id", "last_entry_id")


def _upsert(dialect_insert) -> DriverStatement:
    statement = dialect_insert(account_days_t).values({c: bindparam(c) for c in _COLUMNS})
    current, new = account_days_t.c, statement.excluded
    return DriverStatement(statement.on_conflict_do_update(
        index_elements=["account_id", "day", "kind"],
        set_={
            "in_count": current.in_count + new.in_count,
            "in_cents": current.in_cents + new.in_cents,
            "out_count": current.out_count + new.out_count,
            "out_cents": current.out_cents + new.out_cents,
            # Ids grow with time but commits interleave: keep the true bounds.
            "first_entry_id": _least(current.first_entry_id, new.first_entry_id),
            "last_entry_id": _greatest(current.last_entry_id, new.last_entry_id),
        },
    ))


def _least(a, b):
    return case((b < a, b), else_=a)  # LEAST() is PostgreSQL's, min(a, b) SQLite's


def _greatest(a, b):
    return case((b > a, b), else_=a)


_UPSERTS = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


def paris_day(instant: dt.datetime) -> dt.date:
    """The Paris day of an instant, aware or as stored (SQLite hands back naive UTC)."""
    return as_utc(instant).astimezone(PARIS).date()


def record(conn: Connection, *, entry_id: int, kind: str, created_at: dt.datetime,
           deltas: dict[int, int]) -> None:
    """The entry's effect on each account it moved (``deltas``: account id → cents)."""
    day = paris_day(created_at)
    day_value: dt.date | str = day.isoformat() if conn.dialect.name == "sqlite" else day
    rows = []
    for account_id, delta in sorted(deltas.items()):
        if not delta:
            continue
        rows.append({
            "account_id": account_id, "day": day_value, "kind": kind,
            "in_count": 1 if delta > 0 else 0, "in_cents": max(delta, 0),
            "out_count": 1 if delta < 0 else 0, "out_cents": max(-delta, 0),
            "first_entry_id": entry_id, "last_entry_id": entry_id,
        })
    if rows:
        _UPSERTS[conn.dialect.name].executemany(conn, rows)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class DayFigures:
    in_count: int = 0
    in_cents: int = 0
    out_count: int = 0
    out_cents: int = 0


def figures(conn: Connection, account_ids: list[int], day: dt.date,
            kinds: tuple[str, ...]) -> dict[str, DayFigures]:
    """One day's figures per kind, summed over ``account_ids``."""
    if not account_ids:
        return {}
    rows = conn.execute(
        select(account_days_t.c.kind, func.sum(account_days_t.c.in_count),
               func.sum(account_days_t.c.in_cents), func.sum(account_days_t.c.out_count),
               func.sum(account_days_t.c.out_cents))
        .where(account_days_t.c.account_id.in_(account_ids), account_days_t.c.day == day,
               account_days_t.c.kind.in_(kinds))
        .group_by(account_days_t.c.kind)
    ).all()
    return {kind: DayFigures(*(int(v) for v in values)) for kind, *values in rows}


def entry_range(conn: Connection, account_ids: list[int], first_day: dt.date | None,
                last_day: dt.date | None) -> tuple[int, int] | None:
    """The smallest and largest entry ids the accounts saw between the two Paris days
    (inclusive; None: open), or None when they saw nothing then."""
    if not account_ids:
        return None
    query = select(func.min(account_days_t.c.first_entry_id),
                   func.max(account_days_t.c.last_entry_id)).where(
        account_days_t.c.account_id.in_(account_ids))
    if first_day is not None:
        query = query.where(account_days_t.c.day >= first_day)
    if last_day is not None:
        query = query.where(account_days_t.c.day <= last_day)
    low, high = conn.execute(query).one()
    return None if low is None else (int(low), int(high))


def daily_deltas(conn: Connection, account_ids: list[int]) -> list[tuple[dt.date, int, int]]:
    """(day, account id, net cents) for every day the accounts moved, oldest first."""
    if not account_ids:
        return []
    net = func.sum(account_days_t.c.in_cents - account_days_t.c.out_cents)
    rows = conn.execute(
        select(account_days_t.c.day, account_days_t.c.account_id, net)
        .where(account_days_t.c.account_id.in_(account_ids))
        .group_by(account_days_t.c.day, account_days_t.c.account_id)
        .order_by(account_days_t.c.day)
    ).all()
    return [(_as_date(day), int(account), int(amount)) for day, account, amount in rows]


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


# ---------------------------------------------------------------- from the journal

Key = tuple[int, dt.date, str]
Days = tuple[dt.date, dt.date] | None  # first and last Paris day, inclusive
Figures = tuple[int, int, int, int, int, int]  # in n, in c, out n, out c, first, last


def _journal_select(days: Days = None):
    """PostgreSQL: the figures as one GROUP BY over the postings, per entry and account
    first (an entry counts once per account), in the table's column order; ``days``:
    only the entries of those Paris days."""
    per_entry_sq = _per_entry(days)
    day = func.date(func.timezone("Europe/Paris", entries_t.c.created_at))
    delta = per_entry_sq.c.delta
    return (
        select(per_entry_sq.c.account_id, day, entries_t.c.kind,
               func.count().filter(delta > 0),
               func.coalesce(func.sum(delta).filter(delta > 0), 0),
               func.count().filter(delta < 0),
               func.coalesce(-func.sum(delta).filter(delta < 0), 0),
               func.min(per_entry_sq.c.entry_id), func.max(per_entry_sq.c.entry_id))
        .select_from(per_entry_sq.join(entries_t, entries_t.c.id == per_entry_sq.c.entry_id))
        .where(delta != 0)
        .group_by(per_entry_sq.c.account_id, day, entries_t.c.kind)
    )


def _per_entry(days: Days):
    """What each entry did to each account it moved (an entry counts once per account);
    ``days``: only the entries of those Paris days."""
    per_entry = (
        select(postings_t.c.entry_id, postings_t.c.account_id,
               func.sum(postings_t.c.amount).label("delta"))
        .group_by(postings_t.c.entry_id, postings_t.c.account_id)
    )
    if days is not None:
        per_entry = per_entry.where(postings_t.c.entry_id.in_(_entries_of(days)))
    return per_entry.subquery()


def _entries_of(days: tuple[dt.date, dt.date]):
    start = dt.datetime.combine(days[0], dt.time(0), tzinfo=PARIS).astimezone(dt.UTC)
    end = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time(0),
                              tzinfo=PARIS).astimezone(dt.UTC)
    return select(entries_t.c.id).where(entries_t.c.created_at >= start,
                                        entries_t.c.created_at < end)


def from_journal(conn: Connection, *, days: Days = None) -> dict[Key, Figures]:
    """The figures recomputed from the postings (``days``: of those Paris days only)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_journal_select(days)).all()
        return {(r[0], r[1], r[2]): tuple(int(v) for v in r[3:]) for r in rows}  # type: ignore[misc]
    per_entry_sq = _per_entry(days)
    # SQLite has no time zones: the Paris day is computed here, entry by entry.
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    journal = conn.execute(
        select(per_entry_sq.c.account_id, per_entry_sq.c.entry_id, per_entry_sq.c.delta,
               entries_t.c.kind, entries_t.c.created_at)
        .select_from(per_entry_sq.join(entries_t, entries_t.c.id == per_entry_sq.c.entry_id))
        .where(per_entry_sq.c.delta != 0)
    )
    for account_id, entry_id, delta, kind, created_at in journal:
        figures_ = totals[(account_id, paris_day(created_at), kind)]
        if delta > 0:
            figures_[0] += 1
            figures_[1] += delta
        else:
            figures_[2] += 1
            figures_[3] -= delta
        figures_[4] = entry_id if not figures_[4] else min(figures_[4], entry_id)
        figures_[5] = max(figures_[5], entry_id)
    return {key: tuple(values) for key, values in totals.items()}  # type: ignore[misc]


def stored(conn: Connection, *, days: Days = None) -> dict[Key, Figures]:
    query = select(*(account_days_t.c[c] for c in _COLUMNS))
    if days is not None:
        query = query.where(account_days_t.c.day.between(*days))
    return {(r[0], _as_date(r[1]), r[2]): tuple(int(v) for v in r[3:])  # type: ignore[misc]
            for r in conn.execute(query)}


def _describe(key: Key, expected, found) -> str:
    account, day, kind = key
    return (f"compte {account}, {day:%d/%m/%Y}, {kind} : "
            f"attendu {expected}, enregistré {found}")


def differences(conn: Connection, *, days: Days = None, limit: int = 100) -> list[str]:
    """What differs between the stored figures and the journal, one line per key (at
    most ``limit``); ``days``: only those Paris days (inclusive)."""
    if conn.dialect.name == "postgresql":
        return _differences_in_sql(conn, days, limit)
    expected, found = from_journal(conn, days=days), stored(conn, days=days)
    problems = []
    for key in sorted(expected.keys() | found.keys(), key=lambda k: (k[0], k[1], k[2])):
        if expected.get(key) != found.get(key):
            problems.append(_describe(key, expected.get(key), found.get(key)))
    return problems[:limit]


def _differences_in_sql(conn: Connection, days: Days, limit: int) -> list[str]:
    """PostgreSQL: the journal's figures and the stored ones compared in the server (a
    full outer join: only the differing keys come back, not millions of rows)."""
    journal = _journal_select(days).subquery("journal")
    kept = select(*(account_days_t.c[c] for c in _COLUMNS))
    if days is not None:
        kept = kept.where(account_days_t.c.day.between(*days))
    kept_sq = kept.subquery("kept")
    j, k = list(journal.c), [kept_sq.c[c] for c in _COLUMNS]
    same_key = and_(j[0] == k[0], j[1] == k[1], j[2] == k[2])
    rows = conn.execute(
        select(*j, *k)
        .select_from(journal.join(kept_sq, same_key, full=True))
        .where(or_(j[0].is_(None), k[0].is_(None),
                   *[a != b for a, b in zip(j[3:], k[3:], strict=True)]))
        .order_by(func.coalesce(j[0], k[0]), func.coalesce(j[1], k[1]),
                  func.coalesce(j[2], k[2]))
        .limit(limit)
    ).all()
    problems = []
    for row in rows:
        left, right = row[:9], row[9:]
        key = tuple(left[:3]) if left[0] is not None else tuple(right[:3])
        problems.append(_describe(
            (key[0], _as_date(key[1]), key[2]),
            tuple(int(v) for v in left[3:]) if left[0] is not None else None,
            tuple(int(v) for v in right[3:]) if right[0] is not None else None))
    return problems


def rebuild(conn: Connection) -> int:
    """Rewrite every row from the journal; returns how many rows it wrote."""
    conn.execute(account_days_t.delete())
    if conn.dialect.name == "postgresql":  # in the server, without a round trip per row
        conn.execute(account_days_t.insert().from_select(list(_COLUMNS), _journal_select()))
        return conn.execute(select(func.count()).select_from(account_days_t)).scalar_one()
    rows = [dict(zip(_COLUMNS, (*key, *values), strict=True))
            for key, values in from_journal(conn).items()]
    if rows:
        conn.execute(account_days_t.insert(), rows)
    return len(rows)


def figures_match_journal(conn: Connection, scope: hooks.VerifyScope):
    """``verify``'s line: the daily figures equal the journal, key by key — every day
    with ``--full``; else the days of the entries the run covers (those after the last
    seal, and the sealed months drawn)."""
    from bousol.ledger.books.verify import Check  # verify imports the hooks, not us

    windows: list[Days] = [None]
    if not scope.full:
        tail = _days_after(conn, scope.after_entry_id)
        windows = [tail] if tail is not None else []
        windows += [(month, _month_end(month)) for month in scope.months]
    problems: list[str] = []
    for days in windows:
        problems += differences(conn, days=days)
    covered = "tous les jours" if scope.full else f"{len(windows)} période(s)"
    return Check("chiffres quotidiens des comptes = journal", not problems,
                 f"lignes (compte, jour, nature) comparées au journal : {covered}", problems)


hooks.invariant(figures_match_journal, scoped=True)


def _days_after(conn: Connection, entry_id: int) -> tuple[dt.date, dt.date] | None:
    """From the Paris day of the first entry after ``entry_id`` to the last day: the
    days whose figures may hold entries not yet sealed (None: there is none)."""
    first = conn.execute(select(func.min(entries_t.c.created_at))
                         .where(entries_t.c.id > entry_id)).scalar()
    if first is None:
        return None
    return (paris_day(first), dt.date.max - dt.timedelta(days=2))


def _month_end(month: dt.date) -> dt.date:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)
