"""The per-account daily figures (account_days) the posting engine maintains, and the
statement's keyset scan that reads the journal a page at a time."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bousol.ledger.books import account_days, posting, statements
from bousol.ledger.books.verify import verify


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def at(monkeypatch, when: dt.datetime) -> None:
    monkeypatch.setattr(posting, "utcnow", lambda: when)


def party_id(ledger, actor) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                            {"c": actor.party_code}).scalar_one()


def account_id(ledger, actor, currency: str = "BSOL") -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT a.id FROM accounts a JOIN parties p ON p.id = a.party_id "
            "WHERE p.code = :c AND a.currency = :cur AND a.purpose = 'main'"),
            {"c": actor.party_code, "cur": currency}).scalar_one()


def stored(ledger) -> dict:
    with ledger.engine.connect() as conn:
        return account_days.stored(conn)


@pytest.fixture
def shop(ledger, monkeypatch):
    ledger.subsidy("500.00")
    marie = ledger.soliste(name="Marie")
    paul = ledger.soliste(name="Paul")
    baker = ledger.prestataire(name="Boulangerie")
    at(monkeypatch, utc(2026, 11, 20, 9, 0))
    ledger.exchange(marie, "100.00")
    ledger.exchange(paul, "40.00")
    # 21/11 23:30 UTC is already 22/11 in Paris (winter, UTC+1).
    at(monkeypatch, utc(2026, 11, 21, 23, 30))
    first = ledger.pay(marie, baker, "12.50").entry_id
    at(monkeypatch, utc(2026, 11, 22, 10, 0))
    ledger.pay(paul, baker, "2.00")
    reversed_ = ledger.pay(marie, baker, "1.00").entry_id
    ledger.reverse(reversed_)
    return {"marie": marie, "paul": paul, "baker": baker, "first": first}


def test_each_entry_counts_once_per_account_on_its_paris_day(ledger, shop):
    figures = stored(ledger)
    baker = account_id(ledger, shop["baker"])
    payments = figures[(baker, dt.date(2026, 11, 22), "payment")]
    # in: 3 payments, 15,50 B; out: none; the day's first entry is the 00:30 one.
    assert payments[:4] == (3, 1550, 0, 0)
    assert payments[4] == shop["first"]
    reversal = figures[(baker, dt.date(2026, 11, 22), "reversal")]
    assert reversal[:4] == (0, 0, 1, 100)
    marie = account_id(ledger, shop["marie"])
    assert figures[(marie, dt.date(2026, 11, 20), "exchange")][:4] == (1, 10500, 0, 0)
    assert (marie, dt.date(2026, 11, 21), "payment") not in figures


def test_maintained_figures_equal_the_journal_and_a_rebuild(ledger, shop):
    maintained = stored(ledger)
    with ledger.engine.connect() as conn:
        assert account_days.from_journal(conn) == maintained
        assert account_days.differences(conn) == []
    with ledger.engine.begin() as conn:
        assert account_days.rebuild(conn) == len(maintained)
    assert stored(ledger) == maintained
    ledger.assert_consistent()


def test_verify_names_a_figure_that_differs_from_the_journal(ledger, shop):
    baker = account_id(ledger, shop["baker"])
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE account_days SET in_cents = in_cents + 1 "
                             "WHERE account_id = :a AND kind = 'payment'"), {"a": baker})
    with ledger.uow(read_only=True) as uow:
        report = verify(uow.conn)
    check = next(c for c in report.checks if "quotidiens" in c.name)
    assert not check.ok and not report.ok
    assert any(f"compte {baker}, 22/11/2026, payment" in p for p in check.problems)


def test_takings_come_from_the_day_figures(ledger, shop):
    with ledger.uow(read_only=True) as uow:
        takings = statements.takings_today(uow.conn, party_id(ledger, shop["baker"]),
                                           dt.date(2026, 11, 22))
        before = statements.takings_today(uow.conn, party_id(ledger, shop["baker"]),
                                          dt.date(2026, 11, 21))
    assert (takings.payments_count, takings.payments_cents) == (3, 1550)
    assert (before.payments_count, before.payments_cents) == (0, 0)


# ---------------------------------------------------------------- the keyset scan


@pytest.fixture
def long_history(ledger, monkeypatch):
    """Marie pays the baker 30 times over 6 days; Paul pays twice, with a word."""
    ledger.subsidy("500.00")
    marie, paul = ledger.soliste(name="Marie"), ledger.soliste(name="Paul")
    baker = ledger.prestataire(name="Boulangerie")
    at(monkeypatch, utc(2026, 11, 1, 9))
    ledger.exchange(marie, "100.00")
    ledger.exchange(paul, "10.00")
    ids = []
    for i in range(30):
        at(monkeypatch, utc(2026, 11, 2 + i // 5, 10, i))
        ids.append(ledger.pay(marie, baker, "0.10").entry_id)
        if i in (3, 27):
            ledger.pay(paul, baker, "0.20", memo="galette des rois")
    return {"baker": party_id(ledger, baker), "ids": ids}


def all_pages(ledger, party, filters, limit, scan_max=statements.SCAN_MAX):
    lines, before, stops = [], None, 0
    while True:
        with ledger.uow(read_only=True) as uow:
            page = statements.statement_page(uow.conn, party, filters, limit=limit,
                                             before_entry_id=before, scan_max=scan_max)
        lines.extend(page.lines)
        stops += page.scan_stopped
        if page.next_before is None:
            return lines, stops
        assert page.next_before < (before or 2**62)
        before = page.next_before


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
def test_pages_follow_each_other_without_gaps_or_repeats(ledger, long_history, limit):
    with ledger.uow(read_only=True) as uow:
        whole = [line.entry_id for line in
                 statements.statement(uow.conn, long_history["baker"], limit=None)]
    assert len(whole) == 32 and whole == sorted(whole, reverse=True)
    paged, _ = all_pages(ledger, long_history["baker"], statements.Filters(), limit)
    assert [line.entry_id for line in paged] == whole


def test_a_date_filter_starts_the_scan_at_the_days_entries(ledger, long_history):
    filters = statements.Filters(date_from=dt.date(2026, 11, 3),
                                 date_to=dt.date(2026, 11, 4))
    paged, _ = all_pages(ledger, long_history["baker"], filters, 3)
    # Days 3 and 4 of November: payments 5 to 14 of Marie, and Paul's galette (i = 3
    # falls on the 2nd: not in).
    assert [line.entry_id for line in paged] == sorted(long_history["ids"][5:15],
                                                       reverse=True)
    with ledger.uow(read_only=True) as uow:
        empty = statements.statement_page(uow.conn, long_history["baker"],
                                          statements.Filters(date_from=dt.date(2027, 1, 1)))
    assert empty.lines == [] and empty.next_before is None


def test_a_rare_match_stops_the_scan_and_a_link_goes_on(ledger, long_history):
    filters = statements.Filters(q="galette")
    paged, stops = all_pages(ledger, long_history["baker"], filters, 50, scan_max=8)
    assert [line.memo for line in paged] == ["galette des rois"] * 2
    assert stops >= 2  # 32 entries, 8 at most a request: it stopped and went on
    unbounded, none = all_pages(ledger, long_history["baker"], filters, 50)
    assert [line.entry_id for line in unbounded] == [line.entry_id for line in paged]
    assert none == 0
