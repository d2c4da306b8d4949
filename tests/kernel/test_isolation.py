"""Readers never hold the write lock; verify reads one snapshot; the driver hot path
refuses to run outside a real transaction."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from bousol.extensions import db
from bousol.ledger.books import operations
from bousol.ledger.books.verify import verify
from bousol.ledger.kernel.db import make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.models import User
from tests.helpers import PASSWORD, login


@pytest.fixture
def impatient_uow(database_url):
    """Units of work whose SQLite connections do not wait for a lock: a writer blocked
    by a reader fails at once ("database is locked") instead of after 15 s."""
    engine = make_engine(database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect",
                     lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    factory = make_session_factory(engine)
    yield lambda: UnitOfWork(factory)
    engine.dispose()


@pytest.fixture
def shop(ledger):
    ledger.subsidy("100.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00")
    return marie, baker


def test_an_open_read_only_unit_of_work_does_not_block_a_payment(ledger, shop, impatient_uow):
    marie, baker = shop
    with ledger.uow(read_only=True) as reader:
        reader.conn.execute(sa.text("SELECT count(*) FROM accounts")).scalar()
        operations.pay(impatient_uow(), marie, payee_code=baker.party_code, amount="1.00")
    assert ledger.balance(baker) == 100


def test_a_page_request_does_not_block_a_payment(app, ledger, shop, impatient_uow):
    marie, baker = shop
    with app.test_request_context():
        # What Flask-Login does on every request: the session reads the user…
        db.session.scalars(sa.select(User)).all()
        assert db.session().in_transaction()
        # …and meanwhile a till somewhere else takes a payment.
        operations.pay(impatient_uow(), marie, payee_code=baker.party_code, amount="2.00")
    assert ledger.balance(baker) == 200


def test_logging_in_does_not_hold_a_transaction(client, ledger, shop, impatient_uow,
                                                monkeypatch):
    """The password hash is checked after the user's row is read and the read ended."""
    marie, baker = shop
    import bousol.ledger.access.parties as parties

    real_check = parties.check_password_hash
    paid_meanwhile = []

    def check_and_pay(stored, password):
        operations.pay(impatient_uow(), marie, payee_code=baker.party_code, amount="3.00")
        paid_meanwhile.append(True)
        return real_check(stored, password)

    monkeypatch.setattr(parties, "check_password_hash", check_and_pay)
    login(client, marie.username, PASSWORD)
    assert paid_meanwhile and ledger.balance(baker) == 300


def test_verify_sees_one_snapshot_while_money_moves(ledger, new_uow):
    ledger.subsidy("1000.00")
    solistes = [ledger.soliste() for _ in range(3)]
    baker = ledger.prestataire()
    for s in solistes:
        ledger.exchange(s, "100.00", tender="card")
    done = threading.Event()
    crashes: list[BaseException] = []

    def writer():
        try:
            for i in range(60):
                ledger.exchange(solistes[i % 3], "1.00", tender="cash")
                ledger.pay(solistes[i % 3], baker, "1.00")
        except BaseException as error:
            crashes.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reports = []
    while not done.is_set() or not reports:
        with new_uow(read_only=True) as uow:
            reports.append(verify(uow.conn))
    thread.join()
    assert not crashes
    failed = [r.lines() for r in reports if not r.ok]
    assert not failed, failed[0]


def test_driver_path_refuses_an_autocommit_connection(database_url, ledger, shop):
    marie, baker = shop
    if database_url.startswith("sqlite"):
        # pysqlite left to itself (no BEGIN of ours): reads run outside any transaction.
        engine = sa.create_engine(database_url)
    else:
        engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    factory = make_session_factory(engine)
    entries = ledger.count("entries")
    with pytest.raises(RuntimeError, match="begun transaction"):
        operations.pay(UnitOfWork(factory), marie, payee_code=baker.party_code, amount="1")
    engine.dispose()
    assert ledger.count("entries") == entries and ledger.balance(baker) == 0
    ledger.assert_consistent()
