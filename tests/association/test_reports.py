"""The activity report (issue 7): money supply at each month's end, payments by filière
and commune, active members, velocity, B2B share, CCAS aid; the page and its CSV files.

The history is written in the past (entries carry the time the test sets) over three
Paris months, winter 2025 (Paris = UTC+1), with an empty month before it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from fractions import Fraction

import pytest
import sqlalchemy as sa

from bousol.ledger.association import reports
from bousol.ledger.association.reports import GroupFigures, Supply, Tally
from bousol.ledger.books import posting
from bousol.ledger.books.posting import Leg, lock_accounts, post
from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import note_operations
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import InvalidDate
from bousol.ledger.merchants import refunds
from bousol.ledger.models import SystemAccount
from tests.helpers import BANK, PASSWORD, login

TODAY = paris_today()
DEC, JAN, FEB, MAR = (dt.date(2024, 12, 1), dt.date(2025, 1, 1), dt.date(2025, 2, 1),
                      dt.date(2025, 3, 1))
PERIOD = {"du": "2024-12", "au": "2025-03"}


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def at(monkeypatch, when: dt.datetime) -> None:
    """Entries posted from now on carry this UTC time (refunds check their period
    against it too)."""
    monkeypatch.setattr(posting, "utcnow", lambda: when)
    monkeypatch.setattr(refunds, "utcnow", lambda: when)


def set_commune(ledger, actor, commune: str | None) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET commune = :c WHERE code = :code"),
                     {"c": commune, "code": actor.party_code})


def top_up_reserve(ledger, cents: int) -> None:
    """The association puts euros of its own in the reserve (over-covering)."""
    with ledger.uow() as uow:
        outside, reserve = SystemAccount.EUR_OUTSIDE, SystemAccount.EUR_RESERVE
        locked = lock_accounts(uow.conn, system=(outside, reserve))
        post(uow.conn, kind="subsidy", actor_user_id=None, memo="Dotation de la réserve",
             legs=[Leg(locked.system(outside), -cents), Leg(locked.system(reserve), cents)])
        uow.commit()


def report(ledger, first=DEC, last=MAR, today=None):
    with ledger.uow(read_only=True) as uow:
        return reports.activity_report(uow.conn, first, last, today=today)


@pytest.fixture
def history(ledger, monkeypatch):
    """January: three solistes exchange; Marie and Paul buy at the baker (alimentation,
    Boulogne-sur-Mer) and the bike shop (mobilité douce, no commune); Lucie's only
    purchase (at the florist, Wimereux) is reversed in February.
    February: a purchase at 00:30 Paris on the 1st (still 31 January in UTC); B2B from
    the baker to the bike shop; the baker refunds 4,00 of it; the bike shop reconverts
    10,00; the CCAS funds a programme, grants a paper voucher (12,40 spent at the baker)
    and an earmarked one to Paul (8,00 spent at the bike shop), and pays Marie 10,00 of
    aid. March: Paul buys notes (20 € → 21 B); the association tops the reserve up."""
    ledger.phase("b2b", True)
    ledger.phase("ccas", True)
    marie, paul, lucie = (ledger.soliste(name=n) for n in ("Marie", "Paul", "Lucie"))
    baker = ledger.prestataire("alimentation", name="Boulangerie du Port")
    bike = ledger.prestataire("mobilite-douce", name="Vélo Côte d'Opale")
    florist = ledger.prestataire("loisirs-culture", name="Fleurs")
    set_commune(ledger, baker, "Boulogne-sur-Mer")
    set_commune(ledger, bike, None)
    set_commune(ledger, florist, "Wimereux")
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide hiver", budget="1000", starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=60), filieres=None, default_validity_days=30)

    at(monkeypatch, utc(2025, 1, 10, 10))
    ledger.subsidy("100.00")
    ledger.exchange(marie, "100.00")  # 105,00 B, euros to the reserve
    ledger.exchange(paul, "40.00", tender="cash")  # 42,00 B, euros to the drawer
    ledger.exchange(lucie, "20.00")  # 21,00 B
    at(monkeypatch, utc(2025, 1, 15, 10))
    ledger.pay(marie, baker, "20.00")
    ledger.pay(paul, bike, "10.00")
    wrong = ledger.pay(lucie, florist, "5.00").entry_id
    at(monkeypatch, utc(2025, 1, 31, 23, 30))  # 1 February, 00:30 in Boulogne
    late = ledger.pay(marie, baker, "10.00").entry_id

    at(monkeypatch, utc(2025, 2, 3, 9))
    ledger.reverse(wrong)
    at(monkeypatch, utc(2025, 2, 5, 9))
    ledger.pay(baker, bike, "15.00")  # B2B
    at(monkeypatch, utc(2025, 2, 10, 9))
    refunds.refund(ledger.uow(), baker, payment_entry_id=late, amount="4.00")
    at(monkeypatch, utc(2025, 2, 12, 9))
    ledger.exchange(ccas, "100.00", programme_id=programme.id)  # 105,00 B
    ledger.exchange(ccas, "20.00")  # 21,00 B on the CCAS's own account
    at(monkeypatch, utc(2025, 2, 13, 9))
    paper = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="B-1", amount="30.00",
                           programme_id=programme.id)
    earmarked = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="B-2", amount="20.00",
                               programme_id=programme.id, soliste_code=paul.party_code)
    at(monkeypatch, utc(2025, 2, 14, 9))
    vouchers.redeem(ledger.uow(), baker, code=paper.code, amount="12.40")
    vouchers.pay_with_earmarked(ledger.uow(), paul, voucher_id=earmarked.id,
                                payee_code=bike.party_code, amount="8.00")
    at(monkeypatch, utc(2025, 2, 17, 9))
    ledger.pay(ccas, marie, "10.00")  # aid handed over, not a purchase
    at(monkeypatch, utc(2025, 2, 20, 9))
    ledger.reconvert(bike, "10.00")

    ledger.notes_at_desk([(20, 1, 5), (1, 101, 110)])
    at(monkeypatch, utc(2025, 3, 5, 9))
    note_operations.exchange_notes(ledger.uow(), BANK, party_code=paul.party_code, euros="20.00",
                         counts={20: 1, 1: 1})
    at(monkeypatch, utc(2025, 3, 28, 9))
    top_up_reserve(ledger, 1525)
    monkeypatch.undo()
    ledger.assert_consistent()
    return {"marie": marie, "paul": paul, "lucie": lucie, "baker": baker, "bike": bike,
            "florist": florist, "ccas": ccas}


def filieres(**cents_counts) -> tuple[GroupFigures, ...]:
    """Every filière in order; the given ones as (count, cents)."""
    slugs = ("alimentation", "loisirs-culture", "services-de-proximite", "mobilite-douce",
             "habitat-durable")
    given = {k.replace("_", "-"): v for k, v in cents_counts.items()}
    return tuple(GroupFigures(s, *given.get(s, (0, 0))) for s in slugs)


# ---------------------------------------------------------------- the figures


def test_money_supply_at_each_months_end(ledger, history):
    found = report(ledger)
    assert [m.month for m in found.months] == [DEC, JAN, FEB, MAR]
    assert [m.supply for m in found.months] == [
        Supply(electronic=0, notes=0, vouchers=0, total=0, eur_backing=0),
        Supply(electronic=16800, notes=0, vouchers=0, total=16800, eur_backing=16800),
        # −10,00 reconverted, +105,00 into the programme, +21,00 to the CCAS; vouchers:
        # 30,00 − 12,40 on paper, 20,00 − 8,00 earmarked.
        Supply(electronic=25440, notes=0, vouchers=2960, total=28400, eur_backing=28400),
        Supply(electronic=25440, notes=2100, vouchers=2960, total=30500,
               eur_backing=32025),
    ]
    coverage = [m.supply.coverage_ratio for m in found.months]
    assert coverage == [None, Fraction(1), Fraction(1), Fraction(21, 20)]
    assert found.end_supply.total == 30500


def test_payments_by_kind_with_reversals_and_refunds(ledger, history):
    dec, jan, feb, mar = report(ledger).months
    for empty in (dec, mar):
        assert empty.payments == Tally(0, 0) and empty.aid_spent == Tally(0, 0)
        assert (empty.active_solistes, empty.active_prestataires) == (0, 0)
        assert empty.by_filiere == filieres() and empty.by_commune == ()
    # January: Lucie's reversed purchase counts nowhere; the late one is February's.
    assert (jan.purchases, jan.b2b, jan.aid_spent, jan.refunds) == (
        Tally(2, 3000), Tally(0, 0), Tally(0, 0), Tally(0, 0))
    assert jan.payments == Tally(2, 3000)
    assert (feb.purchases, feb.b2b) == (Tally(1, 1000), Tally(1, 1500))
    assert (feb.vouchers_paper, feb.vouchers_earmarked) == (Tally(1, 1240), Tally(1, 800))
    assert (feb.refunds_purchases, feb.refunds_b2b) == (Tally(1, 400), Tally(0, 0))
    assert feb.payments == Tally(4, 1000 + 1500 + 1240 + 800 - 400)
    assert feb.aid_transfers == Tally(1, 1000)  # the CCAS paying Marie: not a purchase
    assert jan.aid_transfers == Tally(0, 0)


def test_active_members_velocity_b2b_share_and_aid(ledger, history):
    dec, jan, feb, mar = report(ledger).months
    # January: Marie and Paul (not Lucie: reversed); the baker and the bike shop.
    assert (jan.active_solistes, jan.active_prestataires) == (2, 2)
    # February: Marie (purchase) and Paul (his earmarked voucher); baker, bike shop.
    assert (feb.active_solistes, feb.active_prestataires) == (2, 2)
    assert dec.velocity is None  # nothing in circulation
    assert jan.velocity == Fraction(3000, 16800) == Fraction(5, 28)
    assert feb.velocity == Fraction(4140, 28400)
    assert mar.velocity == 0
    assert (dec.b2b_share, jan.b2b_share, feb.b2b_share, mar.b2b_share) == (
        None, 0, Fraction(1500, 4140), None)
    assert feb.aid_spent == Tally(2, 2040)


def test_by_filiere_and_commune(ledger, history):
    found = report(ledger)
    _dec, jan, feb, _mar = found.months
    assert jan.by_filiere == filieres(alimentation=(1, 2000), mobilite_douce=(1, 1000))
    # The baker: Marie's 10,00 + the paper voucher 12,40 − the refund 4,00; the bike
    # shop: B2B 15,00 + the earmarked voucher 8,00.
    assert feb.by_filiere == filieres(alimentation=(2, 1840), mobilite_douce=(2, 2300))
    assert jan.by_commune == (GroupFigures("Boulogne-sur-Mer", 1, 2000),
                              GroupFigures(None, 1, 1000))
    assert feb.by_commune == (GroupFigures("Boulogne-sur-Mer", 2, 1840),
                              GroupFigures(None, 2, 2300))
    assert found.by_filiere == filieres(alimentation=(3, 3840), mobilite_douce=(3, 3300))
    assert found.by_commune == (GroupFigures("Boulogne-sur-Mer", 3, 3840),
                                GroupFigures(None, 3, 3300))
    assert found.total("payments") == Tally(6, 7140)
    assert found.b2b_share == Fraction(1500, 7140)
    assert found.total("aid_spent") == Tally(2, 2040)


def test_a_period_of_one_month_sees_the_earlier_postings(ledger, history):
    (feb,) = report(ledger, FEB, FEB).months
    assert feb.supply.total == 28400 and feb.payments == Tally(4, 4140)


def test_month_bounds_are_paris_midnights():
    assert reports.month_start_utc(dt.date(2025, 2, 1)) == utc(2025, 1, 31, 23)
    assert reports.month_start_utc(dt.date(2025, 4, 1)) == utc(2025, 3, 31, 22)  # summer
    assert reports.add_months(dt.date(2025, 1, 1), -1) == dt.date(2024, 12, 1)
    assert reports.add_months(dt.date(2025, 11, 1), 14) == dt.date(2027, 1, 1)
    assert reports.months_in(dt.date(2024, 12, 1), dt.date(2025, 3, 1)) == 4


# ---------------------------------------------------------------- the period


def test_default_period_is_the_last_twelve_months(ledger):
    found = report(ledger, None, None, today=dt.date(2025, 3, 15))
    assert (found.first_month, found.last_month) == (dt.date(2024, 4, 1), MAR)
    assert len(found.months) == 12
    assert all(m.payments == Tally(0, 0) and m.supply.total == 0 for m in found.months)
    assert reports.resolve_period(JAN, None, dt.date(2025, 3, 15)) == (JAN, MAR)
    assert reports.resolve_period(DEC, None, dt.date(2026, 3, 15)) == (
        DEC, dt.date(2025, 11, 1))
    assert reports.resolve_period(None, FEB, dt.date(2026, 3, 15)) == (
        dt.date(2024, 3, 1), FEB)


@pytest.mark.parametrize(("first", "last", "field", "words"), [
    (dt.date(2025, 4, 1), None, "du", "mois en cours"),
    (JAN, dt.date(2025, 4, 1), "au", "mois en cours"),
    (MAR, JAN, "au", "précède"),
    (dt.date(2022, 3, 1), MAR, "du", "36 mois"),
])
def test_bad_periods_are_refused(first, last, field, words):
    with pytest.raises(InvalidDate) as refused:
        reports.resolve_period(first, last, dt.date(2025, 3, 15))
    assert refused.value.details["field"] == field and words in refused.value.message
    assert reports.resolve_period(dt.date(2022, 4, 1), MAR, dt.date(2025, 3, 15))  # 36


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03", MAR), (" 2025-3 ", MAR), ("03/2025", MAR), ("", None), (None, None)])
def test_parse_month(text, expected):
    assert reports.parse_month(text) == expected


@pytest.mark.parametrize("text", ["2025-13", "2025-00", "1999-12", "mars", "2025-03-01",
                                  "2025/03", "١٢٣٤-٠٣"])
def test_parse_month_refuses(text):
    with pytest.raises(InvalidDate) as refused:
        reports.parse_month(text, "au")
    assert refused.value.details["field"] == "au"


def test_ratio_formats_are_exact():
    assert reports.ratio_plain(Fraction(1500, 4140)) == "0.3623"
    assert reports.ratio_fr(Fraction(21, 20)) == "1,0500"
    assert reports.ratio_plain(Fraction(1, 20000)) == "0.0001"  # half up
    assert reports.ratio_plain(Fraction(-1, 3)) == "-0.3333"
    assert reports.ratio_plain(None) == ""


# ---------------------------------------------------------------- the page and the CSV


def rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.data.startswith("\ufeff".encode())
    text = response.data.decode("utf-8-sig")
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text), delimiter=";"))


@pytest.mark.parametrize("role", ["admin", "bank"])
def test_the_page_shows_the_figures(client, ledger, history, role):
    login(client, ledger.user(role).username, PASSWORD)
    home = client.get("/admin/" if role == "admin" else "/comptoir/")
    assert "/admin/rapports" in home.text
    page = client.get("/admin/rapports", query_string=PERIOD)
    assert page.status_code == 200
    text = page.text
    assert text.count('<svg class="chart') == 3 and "<polyline" in text
    assert 'value="2024-12"' in text and 'value="2025-03"' in text
    assert "décembre 2024" in text and "février 2025" in text
    assert "71,40\u00a0B" in text  # the period's payments, net
    assert "305,00\u00a0B" in text and "320,25\u00a0€" in text  # March's end
    assert "105,0 %" in text and "21,0 %" in text  # coverage; B2B share 1500 / 7140
    assert "Non renseignée" in text and "Boulogne-sur-Mer" in text
    assert 'scope="row"' in text and 'scope="col"' in text
    for table in ("mois", "filieres", "communes"):
        assert f"table={table}" in text


def test_the_default_page_and_who_may_see_it(app, ledger):
    member, treasurer = app.test_client(), app.test_client()
    login(member, ledger.soliste().username, PASSWORD)
    assert member.get("/admin/rapports").status_code == 403
    assert member.get("/admin/rapports.csv").status_code == 403
    login(treasurer, ledger.user("admin").username, PASSWORD)
    page = treasurer.get("/admin/rapports")
    assert page.status_code == 200
    current = TODAY.replace(day=1)
    assert f'value="{current:%Y-%m}"' in page.text
    assert f'value="{reports.add_months(current, -11):%Y-%m}"' in page.text
    assert "Aucun paiement dans la période." in page.text
    assert len(rows(treasurer.get("/admin/rapports.csv"))) == 1 + 12


@pytest.mark.parametrize(("query", "message"), [
    ({"du": "2020-01", "au": "2025-03"}, "36 mois au plus"),
    ({"du": "janvier", "au": "2025-03"}, "Mois invalide"),
    ({"du": "2025-03", "au": "2025-01"}, "précède le mois de début"),
    ({"du": "2025-01", "au": "2100-01"}, "mois en cours"),
    ({"du": "2025-13"}, "Ce mois n&#39;existe pas"),
])
def test_a_bad_period_is_422_with_a_message(client, ledger, query, message):
    login(client, ledger.user("admin").username, PASSWORD)
    for path in ("/admin/rapports", "/admin/rapports.csv"):
        page = client.get(path, query_string=query)
        assert page.status_code == 422
        assert message in page.text and 'aria-invalid="true"' in page.text
        assert "error-summary" in page.text and "<svg" not in page.text


def test_an_unknown_table_is_404(client, ledger):
    login(client, ledger.user("admin").username, PASSWORD)
    assert client.get("/admin/rapports.csv?table=secret").status_code == 404


def test_monthly_csv_matches_the_ledger(client, ledger, history):
    login(client, ledger.user("admin").username, PASSWORD)
    response = client.get("/admin/rapports.csv", query_string={**PERIOD, "table": "mois"})
    assert "rapport-mois-2024-12-au-2025-03.csv" in response.headers["Content-Disposition"]
    header, *lines = rows(response)
    assert [line[0] for line in lines] == ["2024-12", "2025-01", "2025-02", "2025-03"]
    by_month = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    feb, mar = by_month["2025-02"], by_month["2025-03"]
    assert feb["Masse monétaire totale (B)"] == "284,00"
    assert feb["Masse monétaire totale (B) (machine)"] == "284.00"
    assert feb["Bons d'aide en cours (B) (machine)"] == "29.60"
    assert feb["Paiements (nombre)"] == "4"
    assert feb["Paiements, volume net (B) (machine)"] == "41.40"
    assert feb["Paiements B2B (B) (machine)"] == "15.00"
    assert feb["Aide du CCAS dépensée (B) (machine)"] == "20.40"
    assert feb["dont bons fléchés (B) (machine)"] == "8.00"
    assert feb["Remboursements (B) (machine)"] == "4.00"
    assert feb["Aides versées aux solistes par le CCAS (B) (machine)"] == "10.00"
    assert (feb["Solistes actifs"], feb["Prestataires actifs"]) == ("2", "2")
    assert feb["Vitesse de circulation (machine)"] == "0.1458"  # 4140 / 28400
    assert feb["Part du B2B"] == "0,3623"
    assert mar["Taux de couverture (machine)"] == "1.0500"
    assert mar["Billets en circulation (B) (machine)"] == "21.00"
    assert by_month["2024-12"]["Taux de couverture"] == ""  # nothing to cover
    # Every figure of the file is the ledger's.
    expected = report(ledger)
    for month in expected.months:
        line = by_month[f"{month.month:%Y-%m}"]
        assert line["Masse électronique (B) (machine)"] == f"{month.supply.electronic / 100:.2f}"
        assert int(line["Paiements (nombre)"]) == month.payments.count


def test_filiere_and_commune_csv(client, ledger, history):
    set_commune(ledger, history["baker"], "=HYPERLINK(\"http://x\")")
    login(client, ledger.user("admin").username, PASSWORD)
    header, *lines = rows(client.get("/admin/rapports.csv",
                                     query_string={**PERIOD, "table": "filieres"}))
    assert header == ["Mois", "Filière", "Code de la filière", "Paiements (nombre)",
                      "Paiements, volume net (B)", "Paiements, volume net (B) (machine)"]
    assert len(lines) == 4 * 5  # every month, every filière
    assert ["2025-02", "Alimentation", "alimentation", "2", "18,40", "18.40"] in lines
    assert ["2025-02", "Mobilité douce", "mobilite-douce", "2", "23,00", "23.00"] in lines
    assert ["2025-03", "Alimentation", "alimentation", "0", "0,00", "0.00"] in lines
    header, *lines = rows(client.get("/admin/rapports.csv",
                                     query_string={**PERIOD, "table": "communes"}))
    assert header == ["Mois", "Commune", "Paiements (nombre)", "Paiements, volume net (B)",
                      "Paiements, volume net (B) (machine)"]
    assert lines == [
        ["2025-01", "'=HYPERLINK(\"http://x\")", "1", "20,00", "20.00"],  # not a formula
        ["2025-01", "Non renseignée", "1", "10,00", "10.00"],
        ["2025-02", "'=HYPERLINK(\"http://x\")", "2", "18,40", "18.40"],
        ["2025-02", "Non renseignée", "2", "23,00", "23.00"],
    ]
