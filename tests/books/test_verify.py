"""``flask bousol verify`` proves the invariants, and catches each kind of damage."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from bousol.extensions import db
from bousol.ledger.models import SystemAccount


@pytest.fixture
def books(ledger):
    ledger.subsidy("50.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00", tender="card")
    ledger.pay(marie, baker, "30.00")
    ledger.reverse(ledger.pay(marie, baker, "1.00").entry_id)
    ledger.reconvert(baker, "10.00")
    return marie, baker


def _failed(ledger) -> dict[str, list[str]]:
    report = ledger.verify()
    return {c.name: c.problems for c in report.checks if not c.ok}


def test_clean_books_pass(ledger, books):
    report = ledger.verify()
    assert report.ok, report.lines()
    names = [c.name for c in report.checks]
    # The books' own checks, then the domains' invariants (books/hooks.py: the daily
    # figures, the notes, the vouchers, the reports' aggregates…), then the seals of the
    # closed months and the audit chain (bousol/ledger/books/seals.py).
    assert names[:7] == [
        "soldes recalculés", "écritures équilibrées", "devise des mouvements",
        "aucun solde négatif interdit", "émission = − Bou'Sols en circulation",
        "couverture en euros", "contre-passations"]
    assert {"billets en circulation = stock",
            "bons d'aide en circulation = bons ouverts"} <= set(names[7:-2])
    assert names[-2:] == ["sceaux des périodes", "journal d'audit chaîné"]


def test_a_tampered_balance_is_found(ledger, books, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET balance = balance + 100 "
                             "WHERE party_id = (SELECT id FROM parties WHERE code = :c)"),
                     {"c": books[0].party_code})
    failed = _failed(ledger)
    assert "soldes recalculés" in failed
    assert "émission = − Bou'Sols en circulation" in failed


def _lift_triggers(conn, backend):
    if backend == "postgresql":
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    else:
        for name in ("postings_no_update", "postings_no_delete"):
            conn.exec_driver_sql(f"DROP TRIGGER {name}")


def test_an_unbalanced_entry_is_found(ledger, books, engine, backend):
    # Forge damage the code and the triggers would refuse: an attacker with SQL access.
    with engine.begin() as conn:
        _lift_triggers(conn, backend)
        conn.execute(sa.text("UPDATE postings SET amount = amount + 1 WHERE id = "
                             "(SELECT max(id) FROM postings)"))
    failed = _failed(ledger)
    assert "écritures équilibrées" in failed
    assert "soldes recalculés" in failed


def test_a_forged_reversal_is_found(ledger, books, engine, backend):
    with engine.begin() as conn:
        _lift_triggers(conn, backend)
        conn.execute(sa.text(
            "UPDATE postings SET amount = amount * 2 WHERE entry_id = "
            "(SELECT id FROM entries WHERE kind = 'reversal')"))
    assert "contre-passations" in _failed(ledger)


def test_a_shortfall_in_the_reserve_is_found(ledger, books, engine, backend):
    with engine.begin() as conn:
        _lift_triggers(conn, backend)
        # Euros leave the reserve for the outside without Bou'Sols coming back.
        conn.execute(sa.text(
            "UPDATE postings SET amount = amount - 500 WHERE id = (SELECT min(p.id) "
            "FROM postings p JOIN accounts a ON a.id = p.account_id "
            "WHERE a.system_code = 'eur_reserve')"))
        conn.execute(sa.text("UPDATE accounts SET balance = balance - 500 "
                             "WHERE system_code = 'eur_reserve'"))
    assert "couverture en euros" in _failed(ledger)


def test_cli_verify_exit_codes(app, engine):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bousol", "verify"])
    assert result.exit_code == 0, result.output
    assert "Registre cohérent" in result.output and "[OK] soldes recalculés" in result.output
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET balance = 5 WHERE system_code = 'bonus_fund'"))
    result = runner.invoke(args=["bousol", "verify"])
    assert result.exit_code == 1
    assert "[ÉCHEC] soldes recalculés" in result.output


def test_migrations_are_idempotent(app):
    with app.app_context():
        upgrade()  # already at head: nothing to do, nothing broken
        assert db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def test_migrations_downgrade_and_upgrade_again(app, engine):
    with app.app_context():
        downgrade(revision="base")
        db.session.remove()
        db.engine.dispose()
        assert "postings" not in sa.inspect(db.engine).get_table_names()
        upgrade()
        db.engine.dispose()
    with engine.connect() as conn:
        codes = conn.execute(sa.text("SELECT count(*) FROM accounts WHERE system_code IS NOT NULL"))
        assert codes.scalar() == len(SystemAccount)
