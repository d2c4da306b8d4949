"""Views shared by several actors' blueprints (the first page of each role)."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from bousol.extensions import db
from bousol.ledger import queries, rules, settings
from bousol.ledger.queries import KIND_LABELS


def party_home(title: str):
    conn = db.session.connection()
    party = current_user.party
    return render_template(
        "party_home.html",
        title=title,
        party=party,
        balances=queries.party_balances(conn, party.id),
        statement=queries.party_statement(conn, party.id, limit=20),
        kind_labels=KIND_LABELS,
    )


def system_home(title: str):
    conn = db.session.connection()
    phase_settings = settings.current(conn, [f"phase.{p.value}" for p in rules.SWITCHABLE])
    return render_template(
        "system_home.html",
        title=title,
        supply=queries.money_supply(conn),
        accounts=queries.system_accounts(conn),
        journal=queries.journal(conn, limit=30),
        phases=[(rules.PHASE_LABELS[p], phase_settings[f"phase.{p.value}"] == "on")
                for p in rules.SWITCHABLE],
        kind_labels=KIND_LABELS,
    )
