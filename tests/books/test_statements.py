"""A member's statement: filters (Paris days, kind, direction, text), today's takings,
receipts only for one's own entries, the accountant's CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from bousol.ledger.books import posting, statements
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.kernel.errors import InvalidDate, InvalidInput


def at(monkeypatch, when: dt.datetime) -> None:
    """Entries posted from now on carry this UTC time."""
    monkeypatch.setattr(posting, "utcnow", lambda: when)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def party_id(ledger, actor) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                            {"c": actor.party_code}).scalar_one()


def read(ledger, fn, *args, **kw):
    with ledger.uow(read_only=True) as uow:
        return fn(uow.conn, *args, **kw)


def refund(ledger, shop, customer, cents: int, memo: str | None = None) -> int:
    """A refund entry (kind ``refund``): the shop gives Bou'Sols back."""
    with ledger.uow() as uow:
        locked = lock_accounts(uow.conn, party_codes=(shop.party_code, customer.party_code))
        entry_id = post(uow.conn, kind="refund", actor_user_id=None, memo=memo,
                        legs=[Leg(locked.party(shop.party_code), -cents),
                              Leg(locked.party(customer.party_code), cents)])
        uow.commit()
    return entry_id


@pytest.fixture
def books(ledger, monkeypatch):
    """Marie pays the baker around midnight UTC on 22/11/2026 (winter: Paris = UTC+1)."""
    ledger.subsidy("100.00")
    marie = ledger.soliste(name="Marie Lefebvre")
    baker = ledger.prestataire(name="Boulangerie du Port")
    florist = ledger.prestataire(name="Fleurs =Rose")
    at(monkeypatch, utc(2026, 11, 20, 9, 0))
    ledger.exchange(marie, "100.00")  # +105,00 B
    # 21/11 23:30 UTC is 22/11 00:30 in Paris: a Paris 22/11 payment.
    at(monkeypatch, utc(2026, 11, 21, 23, 30))
    late = ledger.pay(marie, baker, "12.50", memo="Pain de campagne").entry_id
    # 22/11 22:59 UTC is 22/11 23:59 Paris; 23:00 UTC is already the 23rd in Paris.
    at(monkeypatch, utc(2026, 11, 22, 22, 59))
    last = ledger.pay(marie, florist, "7.25", memo="=SUM(A1)").entry_id
    at(monkeypatch, utc(2026, 11, 22, 23, 0))
    next_day = ledger.pay(marie, baker, "3.00", memo="Croissants").entry_id
    return {"marie": marie, "baker": baker, "florist": florist, "late": late,
            "last": last, "next_day": next_day, "marie_id": party_id(ledger, marie),
            "baker_id": party_id(ledger, baker)}


def ids(lines) -> list[int]:
    return [line.entry_id for line in lines]


def test_lines_newest_first_with_signed_amounts_and_counterparty(ledger, books):
    lines = read(ledger, statements.statement, books["marie_id"])
    assert [line.amount for line in lines] == [-300, -725, -1250, 10500]
    assert lines[0].counterparty_code == books["baker"].party_code
    assert lines[0].counterparty_name == "Boulangerie du Port"
    assert lines[0].counterparty == f"{books['baker'].party_code} Boulangerie du Port"
    assert lines[-1].counterparty is None and lines[-1].kind == "exchange"  # the bank
    baker_lines = read(ledger, statements.statement, books["baker_id"])
    assert [line.amount for line in baker_lines] == [300, 1250]


def test_date_filters_are_paris_days(ledger, books):
    marie = books["marie_id"]
    day = read(ledger, statements.statement, marie, date_from="22/11/2026",
               date_to="22/11/2026")
    assert ids(day) == [books["last"], books["late"]]  # 00:30 and 23:59 Paris, not 00:00+1
    iso = read(ledger, statements.statement, marie, date_from="2026-11-23")
    assert ids(iso) == [books["next_day"]]
    until = read(ledger, statements.statement, marie, date_to=dt.date(2026, 11, 21))
    assert [line.kind for line in until] == ["exchange"]


def test_date_bounds_in_summer_time():
    start, end = statements.paris_bounds(dt.date(2026, 7, 14), dt.date(2026, 7, 14))
    assert start == utc(2026, 7, 13, 22, 0) and end == utc(2026, 7, 14, 22, 0)
    start, end = statements.paris_bounds(dt.date(2026, 1, 5), None)
    assert start == utc(2026, 1, 4, 23, 0) and end is None


def test_kind_direction_and_text_filters(ledger, books, monkeypatch):
    marie = books["marie_id"]
    at(monkeypatch, utc(2026, 11, 23, 10, 0))
    back = refund(ledger, books["baker"], books["marie"], 100, memo="Avoir")
    assert ids(read(ledger, statements.statement, marie, kind="exchange")) != []
    assert ids(read(ledger, statements.statement, marie, kind="refund")) == [back]
    incoming = read(ledger, statements.statement, marie, direction="in")
    assert [line.kind for line in incoming] == ["refund", "exchange"]
    outgoing = read(ledger, statements.statement, marie, direction="out")
    assert ids(outgoing) == [books["next_day"], books["last"], books["late"]]
    # Text: in the memo, in the counterparty's name or code, any case.
    assert ids(read(ledger, statements.statement, marie, q="campagne")) == [books["late"]]
    assert ids(read(ledger, statements.statement, marie, q="boulangerie")) == [
        back, books["next_day"], books["late"]]
    code = books["florist"].party_code.lower()
    assert ids(read(ledger, statements.statement, marie, q=code)) == [books["last"]]
    assert read(ledger, statements.statement, marie, q="100%") == []  # % is literal
    both = read(ledger, statements.statement, marie, q="boulangerie", direction="out",
                date_from="22/11/2026", date_to="22/11/2026")
    assert ids(both) == [books["late"]]


@pytest.mark.parametrize(("given", "field"), [
    ({"date_from": "31/02/2026"}, "date_from"),
    ({"date_from": "2026/11/22"}, "date_from"),
    ({"date_to": "demain"}, "date_to"),
    ({"date_from": "23/11/2026", "date_to": "22/11/2026"}, "date_to"),
    ({"kind": "magic"}, "kind"),
    ({"direction": "sideways"}, "direction"),
    ({"q": "x" * 101}, "q"),
])
def test_bad_filters_are_clear_errors(given, field):
    with pytest.raises(InvalidInput) as refused:
        statements.parse_filters(**given)
    assert refused.value.details["field"] == field
    if field.startswith("date") and "kind" not in given:
        assert isinstance(refused.value, InvalidDate) and refused.value.code == "invalid_date"


def test_parse_date_accepts_french_and_iso():
    assert statements.parse_date("2/3/2026") == dt.date(2026, 3, 2)
    assert statements.parse_date(" 2026-03-02 ") == dt.date(2026, 3, 2)
    assert statements.parse_date("") is None


def test_pagination_never_splits_an_entry(ledger, books, monkeypatch):
    """A reconversion is two lines (Bou'Sols out, euros owed in): a page keeps both."""
    at(monkeypatch, utc(2026, 11, 24, 10, 0))
    reconversion = ledger.reconvert(books["baker"], "10.00").entry_id
    baker = books["baker_id"]
    first = read(ledger, statements.statement, baker, limit=1)
    assert ids(first) == [reconversion, reconversion]
    assert {line.currency: line.amount for line in first} == {"BSOL": -1000, "EUR": 950}
    page = read(ledger, statements.statement_page, baker, statements.Filters(), limit=2)
    assert page.next_before == reconversion
    rest = read(ledger, statements.statement_page, baker, statements.Filters(), limit=2,
                before_entry_id=page.next_before)
    assert ids(rest.lines) == [books["next_day"], books["late"]] and rest.next_before is None


def test_takings_today_counts_payments_and_refunds_of_the_paris_day(ledger, books,
                                                                    monkeypatch):
    baker = books["baker_id"]
    at(monkeypatch, utc(2026, 11, 22, 22, 0))  # 23:00 Paris, the 22nd
    refund(ledger, books["baker"], books["marie"], 250)
    day = read(ledger, statements.takings_today, baker, today=dt.date(2026, 11, 22))
    assert (day.payments_count, day.payments_cents) == (1, 1250)  # the 00:30 one
    assert (day.refunds_count, day.refunds_cents, day.net_cents) == (1, 250, 1000)
    next_day = read(ledger, statements.takings_today, baker, today=dt.date(2026, 11, 23))
    assert (next_day.payments_count, next_day.payments_cents, next_day.net_cents) == (
        1, 300, 300)
    # The customer's side is not takings: Marie received nothing.
    marie = read(ledger, statements.takings_today, books["marie_id"],
                 today=dt.date(2026, 11, 22))
    assert (marie.payments_count, marie.refunds_count, marie.net_cents) == (0, 0, 0)


def test_receipt_only_for_ones_own_entries(ledger, books):
    found = read(ledger, statements.receipt, books["marie_id"], books["late"])
    assert found.amount == -1250 and found.currency == "BSOL"
    assert found.counterparty_code == books["baker"].party_code
    assert found.counterparty_name == "Boulangerie du Port" and found.memo == "Pain de campagne"
    assert found.kind == "payment" and found.reversed_by_id is None
    shop = read(ledger, statements.receipt, books["baker_id"], books["late"])
    assert shop.amount == 1250 and shop.counterparty_name == "Marie Lefebvre"
    # The florist's entry is not the baker's business; nor is an entry that does not exist.
    assert read(ledger, statements.receipt, books["baker_id"], books["last"]) is None
    assert read(ledger, statements.receipt, books["baker_id"], 999_999) is None


def test_receipt_links_a_reversal_both_ways(ledger, books):
    reversal = ledger.reverse(books["late"]).entry_id
    original = read(ledger, statements.receipt, books["marie_id"], books["late"])
    assert original.reversed_by_id == reversal
    cancelling = read(ledger, statements.receipt, books["marie_id"], reversal)
    assert cancelling.reverses_id == books["late"] and cancelling.amount == 1250


def _rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_csv_for_the_accountant(ledger, books):
    lines = read(ledger, statements.statement, books["marie_id"], limit=None)
    text = statements.statement_csv(lines)
    assert "\r\n" in text
    rows = _rows(text)
    assert rows[0] == list(statements.CSV_HEADER) and len(rows[0]) == 11
    by_entry = {row[3]: row for row in rows[1:]}
    late = by_entry[str(books["late"])]
    assert late == ["22/11/2026", "00:30:00", "2026-11-22T00:30:00+01:00",
                    str(books["late"]), "Paiement", books["baker"].party_code,
                    "Boulangerie du Port", "Pain de campagne", "-12,50", "-12.50", "BSOL"]
    exchange = rows[-1]
    assert exchange[4] == "Change euros → Bou'Sols" and exchange[5] == ""
    assert exchange[6] == "Banque SOL" and exchange[8:] == ["105,00", "105.00", "BSOL"]


def test_csv_guards_against_formulas_but_not_its_own_numbers(ledger, books):
    lines = read(ledger, statements.statement, books["marie_id"], limit=None)
    rows = _rows(statements.statement_csv(lines))
    florist = next(row for row in rows if row[3] == str(books["last"]))
    assert florist[6] == "Fleurs =Rose"  # only a leading sign is dangerous
    assert florist[7] == "'=SUM(A1)"
    assert florist[8] == "-7,25" and florist[9] == "-7.25"  # ours: never prefixed
    for dangerous in ("=1+1", "+33 6", "-2", "@cmd", "\tx"):
        assert statements.safe_cell(dangerous) == "'" + dangerous
    assert statements.safe_cell("Pain") == "Pain" and statements.safe_cell(None) == ""


def test_csv_amounts_are_exact_cents():
    def line(cents: int, currency: str = "BSOL") -> statements.Line:
        return statements.Line(1, "payment", utc(2026, 6, 1, 12, 0), None, currency, cents,
                               "P-000001", "X", None)

    rows = _rows(statements.statement_csv(
        [line(1), line(-10), line(123456789), line(-100_000_000), line(1999, "EUR")]))
    assert [(r[8], r[9], r[10]) for r in rows[1:]] == [
        ("0,01", "0.01", "BSOL"), ("-0,10", "-0.10", "BSOL"),
        ("1234567,89", "1234567.89", "BSOL"), ("-1000000,00", "-1000000.00", "BSOL"),
        ("19,99", "19.99", "EUR")]
    assert rows[1][1] == "14:00:00" and rows[1][2] == "2026-06-01T14:00:00+02:00"


def test_csv_filename_names_the_dates():
    filters = statements.parse_filters(date_from="01/11/2026", date_to="30/11/2026")
    assert statements.csv_filename("P-000001", filters) == (
        "releve-P-000001-2026-11-01-au-2026-11-30.csv")
    assert statements.csv_filename("P-000001", statements.Filters(),
                                   today=dt.date(2026, 12, 1)) == (
        "releve-P-000001-debut-au-2026-12-01.csv")
