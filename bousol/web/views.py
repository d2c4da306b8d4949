"""Views shared by several actors' blueprints (the first page of each role)."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_login import current_user

from bousol.ledger import queries, rules, settings
from bousol.ledger.queries import KIND_LABELS
from bousol.web import charts, unit_of_work


def party_home(title: str):
    party = current_user.party
    with unit_of_work(read_only=True) as uow:  # one snapshot: balance and lines agree
        balances = queries.party_balances(uow.conn, party.id)
        statement = queries.party_statement(uow.conn, party.id, limit=20)
    return render_template(
        "party_home.html", title=title, party=party, balances=balances,
        statement=statement, kind_labels=KIND_LABELS,
    )


def reserve(title: str):
    """Reserve and coverage: today's figures and their history by day."""
    with unit_of_work(read_only=True) as uow:
        supply = queries.money_supply(uow.conn)
        history = queries.coverage_history(uow.conn, days=90)
    labels = [day.day.strftime("%d/%m/%Y") for day in history]
    chart = charts.line_chart(
        _("Bou'Sols en circulation et euros qui les couvrent, par jour"), labels,
        [charts.Series(_("Bou'Sols en circulation"), [d.bsol_in_circulation for d in history],
                       "series-bsol"),
         charts.Series(_("Couverture en euros"), [d.eur_backing for d in history],
                       "series-eur")],
        chart_id="coverage-chart",
    )
    return render_template("reserve.html", title=title, supply=supply, history=history,
                           chart=chart)


def system_home(title: str):
    with unit_of_work(read_only=True) as uow:
        conn = uow.conn
        phase_settings = settings.current(conn, [f"phase.{p.value}" for p in rules.SWITCHABLE])
        supply = queries.money_supply(conn)
        accounts = queries.system_accounts(conn)
        journal = queries.journal(conn, limit=30)
    return render_template(
        "system_home.html",
        title=title,
        supply=supply,
        accounts=accounts,
        journal=journal,
        phases=[(rules.PHASE_LABELS[p], phase_settings[f"phase.{p.value}"] == "on")
                for p in rules.SWITCHABLE],
        kind_labels=KIND_LABELS,
    )
