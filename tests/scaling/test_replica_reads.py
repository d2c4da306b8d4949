"""Reads that tolerate staleness go to the streaming replica; what a user just did reads
the primary; a lagging or stopped replica sends every read back to the primary, and the
admin's home page says so (issue 18, docs/scaling.md).

The proof that a page read the replica is a row only the primary has: the replica's
replay is paused, a payment is written on the primary, and the page does not show it."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from bousol.ledger.books import posting
from bousol.ledger.kernel import replica as replica_mod
from bousol.ledger.kernel.clock import paris_today
from tests.helpers import PASSWORD, login
from tests.scaling.conftest import replica_app, replica_ctl, until

# Last month (by the suite's clock): a past month, whose statement ends before today.
LAST_DAY = paris_today().replace(day=1) - dt.timedelta(days=1)
PAST_MONTH = {"du": f"{LAST_DAY:%Y-%m}", "au": f"{LAST_DAY:%Y-%m}"}
PAST_DAYS = {"du": f"{LAST_DAY:01/%m/%Y}", "au": f"{LAST_DAY:%d/%m/%Y}"}


def last_month(monkeypatch, day: int) -> None:
    """Entries posted from now on are dated that day of last month (10:00 UTC)."""
    monkeypatch.setattr(posting, "utcnow", lambda: dt.datetime(
        LAST_DAY.year, LAST_DAY.month, day, 10, tzinfo=dt.UTC))


def past_payments(client) -> int:
    """How many payments the association's report counts last month (CSV by filière)."""
    response = client.get("/admin/rapports.csv", query_string={**PAST_MONTH, "table": "filieres"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    count = rows[0].index("Paiements (nombre)")
    return sum(int(row[count]) for row in rows[1:])


def status_line(client) -> str:
    page = client.get("/admin/")
    assert page.status_code == 200
    start = page.text.index('data-testid="stale-reads">') + len('data-testid="stale-reads">')
    return page.text[start:page.text.index("</p>", start)]


@pytest.fixture
def books(ledger, monkeypatch):
    """Marie paid the baker once last month (on both servers)."""
    marie = ledger.soliste(name="Marie")
    baker = ledger.prestataire("alimentation", name="Boulangerie du Port")
    treasurer = ledger.user("admin")
    ledger.subsidy("100.00")
    ledger.exchange(marie, "50.00")
    last_month(monkeypatch, 10)
    ledger.pay(marie, baker, "5.00")
    monkeypatch.undo()
    return marie, baker, treasurer


def test_reports_and_past_statements_read_the_replica_the_rest_the_primary(
        ledger, books, replica, close_apps, monkeypatch):
    marie, baker, treasurer = books
    # A bound of an hour: the paused replica stays "healthy" for this test.
    app = replica_app(ledger_url(ledger), replica, REPLICA_MAX_LAG_SECONDS="3600",
                      REPLICA_HEALTH_SECONDS="0")
    close_apps.append(app)
    admin, member = app.test_client(), app.test_client()
    login(admin, treasurer.username, PASSWORD)
    login(member, marie.username, PASSWORD)
    replica.caught_up()
    assert past_payments(admin) == 1
    assert "réplique (retard" in status_line(admin)

    replica.pause()
    last_month(monkeypatch, 20)
    ledger.pay(marie, baker, "7.00")  # on the primary only, while the replica waits
    monkeypatch.undo()
    assert replica.scalar("SELECT count(*) FROM entries WHERE kind = 'payment'") == 1

    # The association's report and its CSV: the replica (the second payment not yet there).
    assert past_payments(admin) == 1
    assert admin.get("/admin/rapports", query_string=PAST_MONTH).status_code == 200
    # Last month's statement (it ends before today): the replica.
    past = member.get("/soliste/historique", query_string=PAST_DAYS)
    assert past.status_code == 200
    assert "5,00" in past.text and "7,00" not in past.text
    # Today's statement, the home page and the balance: the primary, the payment is there.
    recent = member.get("/soliste/historique")
    assert "7,00" in recent.text and "5,00" in recent.text
    home = member.get("/soliste/")
    assert "40,50" in home.text  # 52,50 B from the exchange, 5,00 and 7,00 paid
    # The public directory reads the replica too (it shows the baker, replicated).
    assert "Boulangerie du Port" in app.test_client().get("/annuaire").text

    replica.resume()
    replica.caught_up()
    assert past_payments(admin) == 2
    again = member.get("/soliste/historique", query_string=PAST_DAYS)
    assert "7,00" in again.text


def ledger_url(ledger) -> str:
    return ledger.engine.url.render_as_string(hide_password=False)


def test_a_lagging_replica_sends_the_reads_to_the_primary_and_the_page_says_so(
        ledger, books, replica, close_apps, monkeypatch):
    marie, baker, treasurer = books
    app = replica_app(ledger_url(ledger), replica, REPLICA_MAX_LAG_SECONDS="0.5",
                      REPLICA_HEALTH_SECONDS="0")
    close_apps.append(app)
    router = app.extensions["bousol.reads"]
    admin = app.test_client()
    login(admin, treasurer.username, PASSWORD)
    replica.caught_up()
    assert router.health().state == replica_mod.OK

    replica.pause()
    last_month(monkeypatch, 20)
    ledger.pay(marie, baker, "7.00")
    monkeypatch.undo()
    # Past the bound: the replica has received the payment and not replayed it.
    health = until(lambda: (h := router.health()).state == replica_mod.LAGGING and h,
                   "seen as lagging")
    assert health.lag_seconds is not None and health.lag_seconds > 0.5
    line = status_line(admin)
    assert "réplique en retard de" in line and "limite 0,5 s" in line
    assert "lectures sur le primaire" in line
    assert past_payments(admin) == 2  # the primary's figures, the new payment in them

    replica.resume()
    replica.caught_up()
    until(lambda: router.health().state == replica_mod.OK, "healthy again")
    assert "Lectures différées : réplique (retard" in status_line(admin)


def test_an_idle_primary_is_not_a_lagging_replica(ledger, books, replica, close_apps):
    """Long after the last commit, a replica that replayed all it received lags 0 s."""
    app = replica_app(ledger_url(ledger), replica, REPLICA_MAX_LAG_SECONDS="0",
                      REPLICA_HEALTH_SECONDS="0")
    close_apps.append(app)
    replica.caught_up()
    router = app.extensions["bousol.reads"]
    # Only other writers on the server could make it lag for a moment: wait for a 0.
    health = until(lambda: (h := router.health()).lag_seconds == 0.0 and h, "at lag 0")
    assert health.state == replica_mod.OK  # a bound of 0 s, and yet healthy


def test_a_stopped_replica_sends_the_reads_to_the_primary_and_the_page_says_so(
        ledger, books, stoppable_replica, close_apps, monkeypatch):
    marie, baker, treasurer = books
    replica = stoppable_replica
    # The health is cached for an hour: the first read after the stop finds the replica
    # gone by itself, falls back to the primary and marks it unreachable.
    app = replica_app(ledger_url(ledger), replica, REPLICA_HEALTH_SECONDS="3600")
    close_apps.append(app)
    router = app.extensions["bousol.reads"]
    admin = app.test_client()
    login(admin, treasurer.username, PASSWORD)
    replica.caught_up()
    assert past_payments(admin) == 1
    assert "réplique (retard" in status_line(admin)
    probes = router.probes

    replica_ctl("stop")
    with pytest.raises(sa.exc.OperationalError):
        replica.scalar("SELECT 1")
    last_month(monkeypatch, 20)
    ledger.pay(marie, baker, "7.00")
    monkeypatch.undo()
    assert past_payments(admin) == 2  # read on the primary
    assert router.probes == probes  # no probe: the failed connection told
    assert router.health().state == replica_mod.UNREACHABLE
    assert status_line(admin) == (
        "Lectures différées : réplique injoignable : lectures sur le primaire")
    assert admin.get("/admin/rapports", query_string=PAST_MONTH).status_code == 200


def test_a_stopped_replica_is_found_by_the_health_probe(
        ledger, books, stoppable_replica, close_apps):
    replica = stoppable_replica
    app = replica_app(ledger_url(ledger), replica, REPLICA_HEALTH_SECONDS="0")
    close_apps.append(app)
    router = app.extensions["bousol.reads"]
    replica_ctl("stop")
    health = router.health()
    assert health.state == replica_mod.UNREACHABLE and health.error
    admin = app.test_client()
    login(admin, books[2].username, PASSWORD)
    assert "réplique injoignable : lectures sur le primaire" in status_line(admin)
    assert past_payments(admin) == 1
    assert app.test_client().get("/annuaire").status_code == 200
