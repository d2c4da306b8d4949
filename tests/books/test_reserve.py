"""Reserve and coverage: today's figures and the history by day."""

from __future__ import annotations

import datetime as dt

import pytest

from bousol.ledger.books import posting, queries
from tests.helpers import PASSWORD, login


def on_day(monkeypatch, day: dt.date) -> None:
    moment = dt.datetime(day.year, day.month, day.day, 12, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(posting, "utcnow", lambda: moment)


@pytest.fixture
def three_days(ledger, monkeypatch):
    on_day(monkeypatch, dt.date(2026, 11, 2))
    ledger.subsidy("100.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00", tender="card")          # 105 B, 105 € backing
    on_day(monkeypatch, dt.date(2026, 11, 5))
    ledger.exchange(marie, "20.00", tender="cash")           # +21 B, +21 €
    ledger.pay(marie, baker, "50.00")                         # moves nothing in the totals
    on_day(monkeypatch, dt.date(2026, 11, 9))
    ledger.reconvert(baker, "40.00")                          # −40 B, −40 € from the reserve
    monkeypatch.undo()
    return marie, baker


def test_history_is_running_totals_by_day(ledger, three_days):
    with ledger.uow(read_only=True) as uow:
        history = queries.coverage_history(uow.conn)
    assert [d.day for d in history] == [dt.date(2026, 11, 2), dt.date(2026, 11, 5),
                                        dt.date(2026, 11, 9)]
    assert [d.bsol_in_circulation for d in history] == [10_500, 12_600, 8_600]
    assert [d.eur_backing for d in history] == [10_500, 12_600, 8_600]
    assert [d.bonus_fund for d in history] == [9_500, 9_400, 9_400]
    assert all(d.coverage_ratio == 1 for d in history)


def test_history_keeps_the_last_days_only(ledger, three_days):
    with ledger.uow(read_only=True) as uow:
        history = queries.coverage_history(uow.conn, days=2)
    assert [d.day for d in history] == [dt.date(2026, 11, 5), dt.date(2026, 11, 9)]
    assert history[0].bsol_in_circulation == 12_600  # totals still count earlier days


@pytest.mark.parametrize(("role", "path"), [("bank", "/comptoir/reserve"),
                                            ("admin", "/admin/reserve")])
def test_reserve_page(client, ledger, three_days, role, path):
    user = ledger.user(role)
    login(client, user.username, PASSWORD)
    page = client.get(path)
    assert page.status_code == 200
    assert '<svg class="chart"' in page.text and "<polyline" in page.text
    assert "09/11/2026" in page.text and "86,00\u00a0B" in page.text
    assert "100,0 %" in page.text


def test_reserve_page_is_for_the_bank_and_the_association(client, ledger, three_days):
    marie = three_days[0]
    login(client, marie.username, PASSWORD)
    assert client.get("/comptoir/reserve").status_code == 403
    assert client.get("/admin/reserve").status_code == 403


def _figure(html: str, testid: str) -> int:
    """A figure's amount on a page (``1 234,50 B``), in cents."""
    import re

    found = re.search(rf'data-testid="{testid}">(-?[0-9\u202f]+),([0-9]{{2}})\u00a0B<', html)
    assert found, testid
    return int(found.group(1).replace("\u202f", "")) * 100 + int(found.group(2))


@pytest.mark.parametrize(("role", "path"), [("bank", "/comptoir/"), ("admin", "/admin/"),
                                            ("bank", "/comptoir/reserve"),
                                            ("admin", "/admin/reserve")])
def test_the_parts_of_the_money_supply_add_up(client, ledger, role, path):
    """Electronic Bou'Sols, notes and aid vouchers not yet spent: the three parts the
    home and reserve pages show make the money supply (the vouchers were missing)."""
    from bousol.ledger.ccas import vouchers
    from bousol.ledger.kernel import clock

    ledger.subsidy("1000.00")
    ledger.exchange(ledger.soliste(), "20.00")                    # 21 B electronic
    ledger.phase("ccas", True)
    agent = ledger.user("ccas")
    today = clock.paris_today()
    programme = vouchers.create_programme(
        ledger.uow(), agent, name="Aide", budget="500", starts_on=today,
        ends_on=today + dt.timedelta(days=120), filieres=["alimentation"],
        default_validity_days=60, multi_use=True)
    ledger.exchange(agent, "100.00", programme_id=programme.id)  # 105 B to the CCAS
    vouchers.grant(ledger.uow(), agent, beneficiary_ref="B-0001", amount="30.00",
                   programme_id=programme.id)                    # 30 B of them on a voucher
    login(client, ledger.user(role).username, PASSWORD)
    page = client.get(path)
    assert page.status_code == 200
    parts = [_figure(page.text, t) for t in ("electronic", "notes", "vouchers")]
    assert parts == [9_600, 0, 3_000]
    assert sum(parts) == _figure(page.text, "circulation") == 12_600
