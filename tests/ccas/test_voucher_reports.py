"""The funder's report on a CCAS aid programme: figures to the cent, the period, the
CSV and PDF, the page and who may see it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import sqlalchemy as sa

from bousol.ledger.ccas import voucher_batches, vouchers
from bousol.ledger.ccas import voucher_reports as reports
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.clock import PARIS, paris_today
from bousol.ledger.kernel.errors import InvalidDate, NotFound
from bousol.ledger.models import Voucher
from tests.helpers import PASSWORD, login

TODAY = paris_today()


def _grant(ledger, ccas, programme, amount, ref, **kw):
    return vouchers.grant(ledger.uow(), ccas, beneficiary_ref=ref, amount=amount,
                          programme_id=programme.id, **kw)


@pytest.fixture
def scenario(ledger, new_uow):
    """A food-and-culture programme (several goes) and a single-use one, at a grocer
    (alimentation) and a bookshop (loisirs-culture): partial and full redemptions, an
    expiry, a cancellation, a batch left untouched."""
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    main = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire et culture", budget="1000",
        starts_on=TODAY, ends_on=TODAY + dt.timedelta(days=90),
        filieres=["alimentation", "loisirs-culture"], default_validity_days=60)
    ledger.exchange(ccas, "200.00", programme_id=main.id)  # 210,00 B
    once = vouchers.create_programme(
        ledger.uow(), ccas, name="Colis de Noël", budget="100", starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=30), filieres=None, default_validity_days=30,
        multi_use=False)
    ledger.exchange(ccas, "40.00", programme_id=once.id)  # 42,00 B
    grocer = ledger.prestataire("alimentation", name="Épicerie solidaire")
    books = ledger.prestataire("loisirs-culture", name="=Librairie du Port")

    v1 = _grant(ledger, ccas, main, "30.00", "B-1")
    vouchers.redeem(ledger.uow(), grocer, code=v1.code, amount="12.40")
    vouchers.redeem(ledger.uow(), books, code=v1.code, amount="7.60")  # 10,00 left
    v2 = _grant(ledger, ccas, main, "20.00", "B-2")
    vouchers.redeem(ledger.uow(), grocer, code=v2.code, amount="20.00")  # spent
    v3 = _grant(ledger, ccas, main, "15.00", "B-3")
    vouchers.redeem(ledger.uow(), grocer, code=v3.code, amount="5.00")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE vouchers SET valid_until = :d WHERE id = :i"),
                     {"d": TODAY - dt.timedelta(days=1), "i": v3.id})
    assert vouchers.expire_due(new_uow).returned_cents == 1000
    v4 = _grant(ledger, ccas, main, "8.00", "B-4")
    vouchers.cancel(ledger.uow(), ccas, code=v4.code)
    batch = voucher_batches.grant_batch(ledger.uow(), ccas, text="B-5;4,00\nB-6;6,00\n",
                                 programme_id=main.id)

    w1 = _grant(ledger, ccas, once, "25.00", "N-1")
    vouchers.redeem(ledger.uow(), grocer, code=w1.code, amount="18.00")  # 7,00 back
    w2 = _grant(ledger, ccas, once, "10.00", "N-2")
    vouchers.redeem(ledger.uow(), books, code=w2.code, amount="10.00")
    ledger.assert_consistent()
    return {"ledger": ledger, "ccas": ccas, "main": main, "once": once, "grocer": grocer,
            "books": books, "v1": v1, "batch": batch}


def _report(ledger, programme, **kw):
    with ledger.engine.connect() as conn:
        return reports.programme_report(conn, programme.id, **kw)


def test_figures_of_a_programme_to_the_cent(scenario):
    ledger, main = scenario["ledger"], scenario["main"]
    report = _report(ledger, main)
    assert (report.date_from, report.date_to) == (TODAY, TODAY + dt.timedelta(days=90))
    assert report.ccas_name == "CCAS de Boulogne-sur-Mer"
    assert (report.funded_eur_cents, report.funded_bsol_cents) == (20000, 21000)
    assert (report.granted.count, report.granted.cents) == (6, 8300)
    assert (report.redeemed.count, report.redeemed.cents) == (4, 4500)
    assert report.redeemed_vouchers == 3
    assert [(f.filiere, f.count, f.cents) for f in report.by_filiere] == [
        ("alimentation", 3, 3740), ("loisirs-culture", 1, 760)]
    grocer, books = scenario["grocer"], scenario["books"]
    assert [(p.code, p.name, p.filiere, p.count, p.cents) for p in report.by_prestataire] == [
        (grocer.party_code, "Épicerie solidaire", "alimentation", 3, 3740),
        (books.party_code, "=Librairie du Port", "loisirs-culture", 1, 760)]
    assert (report.expired.count, report.expired.cents) == (1, 1000)
    assert (report.cancelled.count, report.cancelled.cents) == (1, 800)
    assert (report.single_use_returned.count, report.single_use_returned.cents) == (0, 0)
    assert (report.outstanding.count, report.outstanding.cents) == (3, 2000)
    assert (report.overdue.count, report.overdue.cents) == (0, 0)
    assert report.available_cents == 21000 - 8300 + 1000 + 800 == 14500
    assert report.remaining_cents == 16500
    # Every Bou'Sol granted is accounted for.
    assert report.granted.cents == (report.redeemed.cents + report.expired.cents
                                    + report.cancelled.cents + report.outstanding.cents)
    # A 91-day period: by week; the series adds up to the totals.
    assert report.step == "week"
    assert sum(b.granted_cents for b in report.series) == 8300
    assert sum(b.redeemed_cents for b in report.series) == 4500
    assert report.series[0].start == TODAY and report.series[-1].end == report.date_to
    assert all(b.start.weekday() == 0 for b in report.series[1:])


def test_single_use_remainders(scenario):
    report = _report(scenario["ledger"], scenario["once"])
    assert (report.granted.count, report.granted.cents) == (2, 3500)
    assert (report.redeemed.count, report.redeemed.cents) == (2, 2800)
    assert (report.single_use_returned.count, report.single_use_returned.cents) == (1, 700)
    assert (report.outstanding.count, report.outstanding.cents) == (0, 0)
    assert report.available_cents == 4200 - 3500 + 700
    assert report.granted.cents == report.redeemed.cents + report.single_use_returned.cents


def test_the_period_filters_flows_but_not_what_remains(scenario):
    ledger, ccas, main = scenario["ledger"], scenario["ccas"], scenario["main"]
    old = _grant(ledger, ccas, main, "12.00", "B-OLD")
    late = _grant(ledger, ccas, main, "3.00", "B-LATE")
    table = Voucher.__table__
    ten_days_ago = TODAY - dt.timedelta(days=10)
    # 23:30 UTC is already the next day in Paris (UTC+1 or +2).
    late_evening = dt.datetime.combine(ten_days_ago, dt.time(23, 30), dt.UTC)
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == old.id).values(
            created_at=clock.now() - dt.timedelta(days=40)))
        conn.execute(sa.update(table).where(table.c.id == late.id).values(
            created_at=late_evening))
    assert late_evening.astimezone(PARIS).date() == ten_days_ago + dt.timedelta(days=1)

    past = _report(ledger, main, date_from=TODAY - dt.timedelta(days=60),
                   date_to=TODAY - dt.timedelta(days=1))
    assert (past.granted.count, past.granted.cents) == (2, 1500)
    assert past.redeemed.cents == past.expired.cents == past.cancelled.cents == 0
    assert past.by_prestataire == [] and past.funded_eur_cents == 0
    assert past.outstanding.cents == 2000 + 1500  # a snapshot of now
    assert past.step == "week"
    assert sorted(b.granted_cents for b in past.series if b.granted_cents) == [300, 1200]

    assert _report(ledger, main, date_from=ten_days_ago, date_to=ten_days_ago).granted.count == 0
    next_day = ten_days_ago + dt.timedelta(days=1)
    assert _report(ledger, main, date_from=next_day, date_to=next_day).granted.cents == 300

    today = _report(ledger, main, date_from=TODAY, date_to=TODAY)
    assert (today.granted.cents, today.redeemed.cents) == (8300, 4500)
    assert len(today.series) == 1

    year = _report(ledger, main, date_from=TODAY - dt.timedelta(days=200), date_to=TODAY)
    assert year.step == "month" and year.granted.cents == 8300 + 1500
    assert all(b.start.day == 1 for b in year.series[1:])
    assert sum(b.granted_cents for b in year.series) == 9800


def test_period_and_programme_refusals(scenario):
    ledger, main = scenario["ledger"], scenario["main"]
    with pytest.raises(InvalidDate):
        _report(ledger, main, date_from=TODAY, date_to=TODAY - dt.timedelta(days=1))
    with pytest.raises(InvalidDate):
        _report(ledger, main, date_from=dt.date(1, 1, 1), date_to=TODAY)
    with pytest.raises(InvalidDate):
        _report(ledger, main, date_from=dt.date(2000, 1, 1), date_to=dt.date(2099, 1, 1))
    with ledger.engine.connect() as conn:
        for bad in (0, 10**12, 987654):
            with pytest.raises(NotFound):
                reports.programme_report(conn, bad)


def test_default_period_reaches_past_the_last_validity(scenario):
    ledger, ccas, once = scenario["ledger"], scenario["ccas"], scenario["once"]
    _grant(ledger, ccas, once, "1.00", "N-9", valid_until=TODAY + dt.timedelta(days=200))
    report = _report(ledger, once)
    assert report.date_to == TODAY + dt.timedelta(days=201) and report.step == "month"


def _csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_csv_sections_amounts_and_no_formula(scenario):
    report = _report(scenario["ledger"], scenario["main"])
    text = reports.report_csv(report)
    assert "\r\n" in text
    rows = _csv_rows(text)
    assert rows[0] == ["Rubrique", "Libellé", "Code", "Filière", "Nombre", "Montant",
                       "Montant (machine)"]
    by_section = {}
    for row in rows[1:]:
        assert len(row) == 7
        by_section.setdefault(row[0], []).append(row)
    assert by_section["Bons attribués"] == [["Bons attribués", "", "", "", "6", "83,00", "83.00"]]
    assert by_section["Utilisations"][0][4:] == ["4", "45,00", "45.00"]
    assert by_section["Bons expirés"][0][4:] == ["1", "10,00", "10.00"]
    assert by_section["Bons annulés"][0][4:] == ["1", "8,00", "8.00"]
    assert by_section["Disponible dans le programme (aujourd'hui)"][0][5:] == ["145,00",
                                                                              "145.00"]
    assert by_section["Utilisations par filière"] == [
        ["Utilisations par filière", "Alimentation", "", "alimentation", "3", "37,40", "37.40"],
        ["Utilisations par filière", "Loisirs et culture", "", "loisirs-culture", "1",
         "7,60", "7.60"]]
    shops = by_section["Utilisations par prestataire"]
    assert shops[1][1] == "'=Librairie du Port"  # a formula never runs
    assert shops[0][1:] == ["Épicerie solidaire", scenario["grocer"].party_code,
                            "alimentation", "3", "37,40", "37.40"]
    granted = by_section["Attribués par période"]
    assert granted[0][1] == f"Semaine du {TODAY:%d/%m/%Y}"
    assert sum(int(r[6].replace(".", "")) for r in granted) == 8300
    assert reports.csv_filename(report) == (
        f"rapport-programme-{scenario['main'].id}-{TODAY.isoformat()}-au-"
        f"{(TODAY + dt.timedelta(days=90)).isoformat()}.csv")


# ---------------------------------------------------------------- the web


def _ccas_client(app, scenario):
    client = app.test_client()
    login(client, scenario["ccas"].username, PASSWORD)
    return client


def test_report_page(app, scenario):
    client = _ccas_client(app, scenario)
    main = scenario["main"]
    page = client.get(f"/ccas/programmes/{main.id}/rapport")
    assert page.status_code == 200
    html = page.text.replace("\u202f", " ").replace("\u00a0", " ")
    assert "Aide alimentaire et culture" in html
    assert re.search(r'data-testid="granted">83,00 B<', html)
    assert re.search(r'data-testid="redeemed">45,00 B<', html)
    assert re.search(r'data-testid="expired">10,00 B<', html)
    assert re.search(r'data-testid="cancelled">8,00 B<', html)
    assert re.search(r'data-testid="outstanding">20,00 B<', html)
    assert re.search(r'data-testid="available">145,00 B<', html)
    assert "Épicerie solidaire" in html and "=Librairie du Port" in html
    assert "Loisirs et culture" in html and "<svg" in html and "<caption>" in html
    assert f"/ccas/programmes/{main.id}/rapport.csv?du=" in html
    # A chosen period, in the links too.
    day = f"{TODAY:%d/%m/%Y}"
    page = client.get(f"/ccas/programmes/{main.id}/rapport", query_string={"du": day,
                                                                          "au": day})
    assert page.status_code == 200
    assert re.search(rf"rapport\.pdf\?du={day.replace('/', '(/|%2F)')}&amp;au=", page.text)


@pytest.mark.parametrize("query", [{"du": "31/02/2026"}, {"au": "demain"},
                                   {"du": "02/01/2026", "au": "01/01/2026"},
                                   {"du": "01/01/1990"}, {"du": "x" * 500}])
def test_bad_dates_are_a_form_error(app, scenario, query):
    client = _ccas_client(app, scenario)
    main = scenario["main"]
    for suffix in ("", ".csv", ".pdf"):
        page = client.get(f"/ccas/programmes/{main.id}/rapport{suffix}", query_string=query)
        assert page.status_code == 422, suffix
        assert 'aria-invalid="true"' in page.text and "error-summary" in page.text


def test_report_csv_and_pdf_responses(app, scenario):
    client = _ccas_client(app, scenario)
    main = scenario["main"]
    response = client.get(f"/ccas/programmes/{main.id}/rapport.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv_rows(response.data.decode("utf-8"))
    assert ["Bons attribués", "", "", "", "6", "83,00", "83.00"] in rows
    pdf = client.get(f"/ccas/programmes/{main.id}/rapport.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert 'filename="rapport-programme-' in pdf.headers["Content-Disposition"]
    assert 1 <= len(re.findall(rb"/Type /Page\b(?!s)", pdf.data)) <= 2


def test_report_pdf_with_nothing_in_the_period(app, scenario):
    client = _ccas_client(app, scenario)
    day = f"{TODAY - dt.timedelta(days=400):%d/%m/%Y}"
    pdf = client.get(f"/ccas/programmes/{scenario['once'].id}/rapport.pdf",
                     query_string={"du": day, "au": day})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_only_the_programmes_ccas_sees_its_report(app, scenario):
    ledger, main = scenario["ledger"], scenario["main"]
    other = ledger.user("ccas", name="CCAS d'Outreau")
    client = app.test_client()
    assert client.get(f"/ccas/programmes/{main.id}/rapport").status_code == 302  # log in
    login(client, other.username, PASSWORD)
    for suffix in ("", ".csv", ".pdf"):
        assert client.get(f"/ccas/programmes/{main.id}/rapport{suffix}").status_code == 404
    shop = app.test_client()
    login(shop, scenario["grocer"].username, PASSWORD)
    assert shop.get(f"/ccas/programmes/{main.id}/rapport").status_code == 403
    own = _ccas_client(app, scenario)
    for bad in ("999999", "99999999999999999999"):
        assert own.get(f"/ccas/programmes/{bad}/rapport").status_code == 404
