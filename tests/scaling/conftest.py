"""Fixtures past one server: the streaming replica (``BOUSOL_TEST_REPLICA_URL``, e.g.
postgresql+psycopg://postgres@127.0.0.1:5433/test) and PgBouncer in transaction pooling
mode (``BOUSOL_TEST_PGBOUNCER_URL``, e.g. postgresql+psycopg://postgres@127.0.0.1:6432/
test, one server connection per database). ``.ci/replica-and-pooler.sh`` starts both.

The database tests here run on PostgreSQL only. Without these servers they skip with a
reason; ``BOUSOL_REQUIRE_REPLICA=1`` (CI) turns the skips into failures. The replica
replicates the whole cluster, the run's schema too: a test waits until the replica has
replayed what the primary wrote before it reads there (a bounded wait, not a timing).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.kernel.db import make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from tests.helpers import Ledger

REPLICA_URL = os.environ.get("BOUSOL_TEST_REPLICA_URL", "")
PGBOUNCER_URL = os.environ.get("BOUSOL_TEST_PGBOUNCER_URL", "")
# How to stop and start the replica (the stopped-replica test), e.g.
# "pg_ctlcluster --skip-systemctl-redirect 15 replica".
REPLICA_CTL = os.environ.get("BOUSOL_TEST_REPLICA_CTL", "")
REQUIRE = os.environ.get("BOUSOL_REQUIRE_REPLICA") == "1"
WAIT_SECONDS = 60


def missing(what: str, how: str):
    message = f"{what}: {how} (.ci/replica-and-pooler.sh sets it up)"
    if REQUIRE:
        pytest.fail(f"BOUSOL_REQUIRE_REPLICA=1 but {message}")
    pytest.skip(message)


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request) -> str:
    """Every database test here runs on PostgreSQL (SQLite has no replica)."""
    return request.param


def same_schema(url: str, database_url: str) -> str:
    """``url``'s server and database, with the run's schema (``options`` of the test
    URL) — the replica holds the primary's schemas."""
    server, test = make_url(url), make_url(database_url)
    return test.set(host=server.host, port=server.port, database=server.database,
                    username=server.username, password=server.password
                    ).render_as_string(hide_password=False)


def until(condition, what: str, seconds: float = WAIT_SECONDS):
    """Poll ``condition`` until it is true (a bounded wait; fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still not {what} after {seconds} s")
        time.sleep(0.05)


class Replica:
    """The running replica, as the tests drive it."""

    def __init__(self, url: str, primary: sa.Engine):
        self.url = url
        self.primary = primary
        self.engine = sa.create_engine(url, poolclass=sa.NullPool,
                                       connect_args={"connect_timeout": 3})

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        with self.primary.connect() as conn:
            lsn = conn.execute(sa.text("SELECT pg_current_wal_lsn()::text")).scalar()
        until(lambda: self.scalar("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)",
                                  lsn=lsn), "replayed by the replica")

    def pause(self) -> None:
        self.scalar("SELECT pg_wal_replay_pause()")
        until(lambda: self.scalar("SELECT pg_get_wal_replay_pause_state()") == "paused",
              "paused")

    def resume(self) -> None:
        self.scalar("SELECT pg_wal_replay_resume()")

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture
def replica(database_url) -> Iterator[Replica]:
    if not REPLICA_URL:
        missing("no streaming replica", "set BOUSOL_TEST_REPLICA_URL")
    url = same_schema(REPLICA_URL, database_url)
    primary = sa.create_engine(database_url, poolclass=sa.NullPool)
    found = Replica(url, primary)
    try:
        in_recovery = found.scalar("SELECT pg_is_in_recovery()")
    except sa.exc.OperationalError as error:
        found.dispose()
        primary.dispose()
        missing(f"the replica at {REPLICA_URL} is unreachable", str(error.orig).strip())
    if not in_recovery:
        pytest.fail(f"BOUSOL_TEST_REPLICA_URL={REPLICA_URL} is not a replica (not in recovery)")
    found.caught_up()
    yield found
    found.resume()  # whatever the test did
    found.dispose()
    primary.dispose()


def replica_app(database_url: str, replica: Replica, **settings):
    return create_app("testing", SQLALCHEMY_DATABASE_URI=database_url,
                      DATABASE_REPLICA_URL=replica.url, **settings)


@pytest.fixture
def close_apps() -> Iterator[list]:
    """Apps made by a test, whose engines (primary and replica) are closed at its end."""
    apps: list = []
    yield apps
    for made in apps:
        with made.app_context():
            made.extensions["bousol.reads"].dispose()
            db.engine.dispose()


def replica_ctl(action: str) -> None:
    subprocess.run([*shlex.split(REPLICA_CTL), action, *(["-m", "fast"] if action == "stop"
                                                         else [])],
                   check=True, capture_output=True, timeout=120)


@pytest.fixture
def stoppable_replica(replica) -> Iterator[Replica]:
    """The replica, which the test may stop: started again (and caught up) at its end."""
    if not REPLICA_CTL:
        missing("no way to stop the replica", "set BOUSOL_TEST_REPLICA_CTL")
    yield replica

    def up() -> bool:
        try:
            return replica.scalar("SELECT pg_is_in_recovery()") is True
        except sa.exc.OperationalError:
            return False

    if not up():
        replica_ctl("start")
        until(up, "started again")
    replica.caught_up()


class PooledDatabase:
    """A database of the run's own, migrated, reached directly and through PgBouncer."""

    def __init__(self, direct_url: str, pooled_url: str):
        self.direct_url = direct_url
        self.pooled_url = pooled_url
        self.direct = make_engine(direct_url)
        factory = make_session_factory(self.direct)
        self.ledger = Ledger(self.direct, lambda **options: UnitOfWork(factory, **options))


@pytest.fixture(scope="session")
def pooled_database(pg_template) -> Iterator[PooledDatabase]:
    """Through PgBouncer the run cannot use its schema (PgBouncer refuses the
    ``options`` that name it, and a ``search_path`` set on a server connection would
    outlive the transaction): it gets a database of its own instead, in the default
    schema as production, made and migrated here and dropped at the end. Its tests
    share it (they count what they add)."""
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable (BOUSOL_TEST_PG_URL)")
    if not PGBOUNCER_URL:
        missing("no PgBouncer", "set BOUSOL_TEST_PGBOUNCER_URL")
    name = f"{run_schema(pg_template.url)}_pgbouncer"
    admin = sa.create_engine(pg_template.base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    direct = make_url(pg_template.base_url).set(database=name).render_as_string(False)
    pooled = make_url(PGBOUNCER_URL).set(database=name).render_as_string(False)
    try:
        probe = sa.create_engine(pooled, poolclass=sa.NullPool,
                                 connect_args={"connect_timeout": 3})
        try:
            with probe.connect():
                pass
        except sa.exc.OperationalError as error:
            missing(f"PgBouncer at {PGBOUNCER_URL} is unreachable", str(error.orig).strip())
        finally:
            probe.dispose()
        app = create_app("testing", SQLALCHEMY_DATABASE_URI=direct)
        with app.app_context():
            upgrade()
            db.engine.dispose()
        made = PooledDatabase(direct, pooled)
        yield made
        made.direct.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def run_schema(database_url: str) -> str:
    """The run's schema, from the test URL's ``options=-csearch_path=…``."""
    options = make_url(database_url).query.get("options", "")
    text = options if isinstance(options, str) else options[0]
    prefix = "-csearch_path="
    assert text.startswith(prefix), database_url
    return text[len(prefix):]
