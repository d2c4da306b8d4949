"""Behind PgBouncer in transaction pooling mode (Debian's 1.18): payments and reports
run with no session state carried between transactions, and psycopg makes no
server-side prepared statements (PgBouncer before 1.21 cannot follow them: a second
client would find the first one's, or miss its own).

The PgBouncer of .ci/replica-and-pooler.sh gives each database ONE server connection:
every client's transactions run on it in turn, so what one client left behind (a
prepared statement, a setting) the others see. The tests share the run's database
(tests/scaling/conftest.py, ``pooled_database``) and count what they add."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.association import reports
from bousol.ledger.kernel.db import behind_pooler, make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from tests.helpers import PASSWORD, Ledger, login

pytestmark = pytest.mark.postgres

PREPARED = "SELECT count(*) FROM pg_prepared_statements"


def prepared(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(PREPARED)).scalar_one()


def payments(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM entries WHERE kind = 'payment'")
                            ).scalar_one()


@pytest.fixture
def pooled(pooled_database):
    """An engine through PgBouncer, set up as the app's is with DATABASE_POOLER."""
    engine = make_engine(pooled_database.pooled_url, pooler="pgbouncer")
    yield engine
    engine.dispose()


def test_pgbouncer_refuses_startup_options(pooled_database):
    """A schema asked as ``options=-csearch_path`` is refused, not silently dropped."""
    url = sa.engine.make_url(pooled_database.pooled_url).update_query_dict(
        {"options": "-csearch_path=elsewhere"})
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with pytest.raises(sa.exc.OperationalError, match="unsupported startup parameter"):
        engine.connect()
    engine.dispose()


def test_payments_and_a_report_run_through_transaction_pooling(pooled_database, pooled):
    ledger = pooled_database.ledger
    marie = ledger.soliste(name="Marie")
    baker = ledger.prestataire("alimentation", name="Boulangerie du Port")
    ledger.subsidy("100.00")
    ledger.exchange(marie, "50.00")
    before = payments(ledger)
    assert prepared(pooled) == 0
    factory = make_session_factory(pooled)
    through = Ledger(pooled, lambda **options: UnitOfWork(factory, **options))
    # Far more than psycopg's 5 runs before it prepares a statement.
    for _ in range(12):
        through.pay(marie, baker, "1.00")
    with UnitOfWork(factory, read_only=True) as uow:
        report = reports.activity_report(uow.conn, None, None)
    assert sum(m.payments.count for m in report.months) == before + 12
    assert through.balance(marie) == 52_50 - 12_00
    assert prepared(pooled) == 0  # the one server connection holds no prepared statement
    through.assert_consistent()


def test_without_the_setting_psycopg_prepares_and_two_clients_collide(pooled_database):
    """The control: psycopg's default (prepare after 5 runs) through the same pool."""
    url = pooled_database.pooled_url
    assert behind_pooler(url) is True  # port 6432: the app would turn it off by itself
    first = sa.create_engine(url, poolclass=sa.NullPool)  # plain SQLAlchemy: no setting
    second = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with first.connect() as a, second.connect() as b:
            for _ in range(8):
                a.execute(sa.text("SELECT 1 + 1")).scalar()
                a.commit()
            assert a.execute(sa.text(PREPARED)).scalar_one() >= 1  # left on the server
            a.commit()
            with pytest.raises(sa.exc.DBAPIError, match="already exists"):
                for _ in range(8):
                    b.execute(sa.text("SELECT 2 + 2")).scalar()
                    b.commit()
            b.rollback()
    finally:
        first.dispose()
        second.dispose()
        clean = sa.create_engine(url, poolclass=sa.NullPool)
        with clean.connect() as conn:
            conn.exec_driver_sql("DEALLOCATE ALL")  # leave the pool's connection clean
            conn.commit()
        clean.dispose()


def test_the_app_behind_pgbouncer_pays_and_reports(pooled_database):
    ledger = pooled_database.ledger
    treasurer = ledger.user("admin")
    marie = ledger.soliste(name="Marie")
    baker = ledger.prestataire("alimentation", name="Boulangerie du Port")
    ledger.subsidy("100.00")
    ledger.exchange(marie, "50.00")
    before = payments(ledger)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=pooled_database.pooled_url,
                     DATABASE_POOLER="pgbouncer")
    try:
        api = app.test_client()
        token = api.post("/api/v1/tokens",
                         json={"username": marie.username, "password": PASSWORD})
        assert token.status_code == 201, token.text
        auth = {"Authorization": f"Bearer {token.json['token']}"}
        answers = []
        for n in range(7):
            paid = api.post("/api/v1/payments", json={"payee": baker.party_code,
                                                      "amount": "1.00"},
                            headers={**auth, "Idempotency-Key": f"pgbouncer-{n}"})
            assert paid.status_code == 201, paid.text
            answers.append(paid.json)
        replay = api.post("/api/v1/payments", json={"payee": baker.party_code,
                                                    "amount": "1.00"},
                          headers={**auth, "Idempotency-Key": "pgbouncer-0"})
        assert replay.status_code == 201 and replay.json == answers[0]  # the same answer
        assert api.get("/api/v1/me", headers=auth).json["balances"]["BSOL"] == "45.50"
        admin = app.test_client()
        assert login(admin, treasurer.username, PASSWORD).status_code == 200
        for _ in range(6):
            assert admin.get("/admin/rapports").status_code == 200
            assert admin.get("/admin/").status_code == 200
        with app.app_context():
            assert prepared(db.engine) == 0
    finally:
        with app.app_context():
            app.extensions["bousol.reads"].dispose()
            db.engine.dispose()
    assert payments(ledger) == before + 7  # the replayed key paid nothing more
    assert ledger.balance(marie) == 45_50
    ledger.assert_consistent()
