"""The read router's rules, without a replica: its health is cached, a replica that
cannot be reached sends the reads to the primary, SQLite ignores the setting, the
pooler setting (issue 18, docs/scaling.md)."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.kernel import replica
from bousol.ledger.kernel.db import behind_pooler, make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from tests.helpers import PASSWORD, Ledger, login

CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:9/test"  # nothing listens


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def router():
    clock = Clock()
    engine = sa.create_engine(CLOSED_PORT_URL, connect_args={"connect_timeout": 2})
    made = replica.ReadRouter(engine, health_seconds=3, monotonic=clock)
    made.clock = clock
    yield made
    made.dispose()


def test_the_health_is_probed_once_per_period_not_per_read(router):
    first = router.health()
    assert first.state == replica.UNREACHABLE and first.error
    assert not first.usable
    router.health()
    router.clock.now += 2.9
    router.health()
    assert router.probes == 1
    router.clock.now += 0.2
    router.health()
    assert router.probes == 2


def test_an_unreachable_replica_gives_reads_on_the_primary(router):
    primary = sa.create_engine("sqlite://")
    try:
        uow = router.stale_read(lambda: sa.orm.Session(primary))
        assert type(uow) is UnitOfWork
        with uow:
            assert uow.conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        primary.dispose()


def test_a_replica_failing_as_the_read_begins_falls_back_and_is_marked(router):
    """The health said the replica was fine; the read's own connection fails."""
    router._health = replica.ReplicaHealth(replica.OK, 0.0)  # as a probe a moment ago
    router._checked_at = router.clock.now
    primary = sa.create_engine("sqlite://")
    try:
        uow = router.stale_read(lambda: sa.orm.Session(primary))
        assert isinstance(uow, replica.ReplicaUnitOfWork)
        with uow:
            assert uow.conn.execute(sa.text("SELECT 1")).scalar() == 1
        assert uow.source == "primary"
        assert router.health().state == replica.UNREACHABLE
        assert router.probes == 0
    finally:
        primary.dispose()


@pytest.mark.parametrize(("value", "message"), [("cinq", "a number of seconds"),
                                                ("-1", "between 0 and 86400")])
def test_bad_settings_are_refused_at_start(value, message):
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ValueError, match=message):
        replica.ReadRouter.from_config({"REPLICA_MAX_LAG_SECONDS": value}, engine)
    with pytest.raises(ValueError, match="DATABASE_POOLER"):
        behind_pooler("postgresql+psycopg://h/db", "pgpool")


def test_the_pooler_setting_and_pgbouncers_port():
    assert behind_pooler("postgresql+psycopg://postgres@127.0.0.1:6432/test")
    assert not behind_pooler("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert behind_pooler("postgresql+psycopg://postgres@db:5432/test", "pgbouncer")
    assert not behind_pooler("postgresql+psycopg://postgres@db:6432/test", "none")


def test_sqlite_has_no_replica_whatever_the_setting(sqlite_template, tmp_path):
    path = tmp_path / "bousol.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}",
                     DATABASE_REPLICA_URL=CLOSED_PORT_URL)
    try:
        router = app.extensions["bousol.reads"]
        assert router.replica is None and router.health().state == replica.NONE
        engine = make_engine(f"sqlite:///{path}")
        factory = make_session_factory(engine)
        treasurer = Ledger(engine, lambda **o: UnitOfWork(factory, **o)).user("admin")
        engine.dispose()
        client = app.test_client()
        login(client, treasurer.username, PASSWORD)
        assert client.get("/admin/rapports").status_code == 200
        home = client.get("/admin/")
        assert "Lectures différées : sur le primaire (pas de réplique configurée)" in home.text
        assert router.probes == 0
    finally:
        with app.app_context():
            db.engine.dispose()


def test_stale_ok_is_for_reads_only(sqlite_template, tmp_path):
    from bousol.web import unit_of_work

    path = tmp_path / "bousol.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
    try:
        with app.test_request_context(), pytest.raises(ValueError, match="read-only"):
            unit_of_work(stale_ok=True)
    finally:
        with app.app_context():
            db.engine.dispose()
