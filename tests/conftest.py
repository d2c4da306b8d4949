"""Fixtures: a fresh, migrated database per test, on SQLite and on PostgreSQL.

Every test that takes ``database_url`` (directly or through ``engine``, ``new_uow``,
``app``, ``ledger``) runs twice: once on SQLite (a copy of a migrated template file) and
once on PostgreSQL (the server at ``BOUSOL_TEST_PG_URL``, default
postgresql://postgres@127.0.0.1:5432/test, in a schema of its own that is emptied and
restored to its freshly-migrated rows before each test).

Without a reachable PostgreSQL server the PostgreSQL half is skipped with a reason that
says how to run it; with ``BOUSOL_REQUIRE_PG=1`` (CI) it fails instead.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.access import parties
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.db import make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork
from tests.helpers import Ledger

PG_URL = os.environ.get(
    "BOUSOL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Each run gets a schema of its own, so that two runs on one server (two terminals, CI
# beside a developer) never truncate each other's tables; it is dropped at the end. A
# fixed name (BOUSOL_TEST_PG_SCHEMA) is kept for whoever wants to look at it afterwards.
PG_SCHEMA_FIXED = "BOUSOL_TEST_PG_SCHEMA" in os.environ
PG_SCHEMA = (os.environ.get("BOUSOL_TEST_PG_SCHEMA")
             or f"bousol_test_{os.getpid()}_{secrets.token_hex(3)}")
REQUIRE_PG = os.environ.get("BOUSOL_REQUIRE_PG") == "1"

# No test reads the real calendar: the whole run starts at one instant, a Wednesday in
# the middle of November unless BOUSOL_CLOCK says otherwise (.ci/run replays the
# date-sensitive tests on 31 December, 1 January just after midnight, and 29 February).
# The clock runs on from there at the real pace, so time-to-live rules still elapse.
# A test that starts another process (a command, a server) passes it
# BOUSOL_CLOCK=clock.now().isoformat() so that both read the same time.
DEFAULT_TEST_CLOCK = "2026-11-18T10:00:00+01:00"
# Hashing with scrypt costs ~50 ms a user; the tests make hundreds of users.
TEST_PASSWORD_METHOD = "pbkdf2:sha256:1000"

# What the run changed, to put back at its end (importing this module changes nothing).
_before: dict[str, object] = {}


def pytest_configure(config) -> None:
    # Before collection: test modules read the clock at import (TODAY = paris_today()).
    _before["clock"] = clock.now() if clock.is_set() else None
    _before["since"] = time.monotonic()
    _before["password_method"] = parties.PASSWORD_METHOD
    clock.set_clock(os.environ.get("BOUSOL_CLOCK", "").strip() or DEFAULT_TEST_CLOCK)
    parties.PASSWORD_METHOD = TEST_PASSWORD_METHOD


def pytest_unconfigure(config) -> None:
    if not _before:
        return
    previous = _before["clock"]
    # A clock set before the run (BOUSOL_CLOCK read by the clock module) ran on meanwhile.
    elapsed = dt.timedelta(seconds=time.monotonic() - _before["since"])
    clock.set_clock(None if previous is None else previous + elapsed)
    parties.PASSWORD_METHOD = _before["password_method"]
    _before.clear()


def _migrate(url: str) -> None:
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


# ------------------------------------------------------------------ SQLite


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    _migrate(f"sqlite:///{path}")
    # Fold the WAL into the main file so that a plain copy is a complete database.
    with sa.create_engine(f"sqlite:///{path}").connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    return str(path)


# ------------------------------------------------------------------ PostgreSQL


class PostgresTemplate:
    """A migrated schema, and the rows the migration seeded, to restore before each test."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.url = (
            base_url + ("&" if "?" in base_url else "?") + f"options=-csearch_path%3D{PG_SCHEMA}"
        )
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {PG_SCHEMA}")
        admin.dispose()
        _migrate(self.url)
        self.engine = sa.create_engine(self.url)
        meta = sa.MetaData()
        meta.reflect(self.engine)
        self.tables = [t for t in meta.sorted_tables if t.name != "alembic_version"]
        with self.engine.connect() as conn:
            self.seed = {t.name: [dict(r._mapping) for r in conn.execute(t.select())]
                         for t in self.tables}

    def drop(self) -> None:
        self.engine.dispose()
        if PG_SCHEMA_FIXED:
            return
        admin = sa.create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        admin.dispose()

    def reset(self) -> None:
        names = ", ".join(t.name for t in self.tables)
        with self.engine.begin() as conn:
            # Replica mode lifts the append-only triggers for the test reset only.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(f"TRUNCATE {names}")
            for table in self.tables:
                if self.seed[table.name]:
                    conn.execute(table.insert(), self.seed[table.name])


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PostgresTemplate | None]:
    try:
        probe = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with probe.connect():
            pass
        probe.dispose()
    except Exception as error:  # the server is simply not there
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required (BOUSOL_REQUIRE_PG=1) but unreachable: {error}")
        yield None
        return
    template = PostgresTemplate(PG_URL)
    yield template
    template.drop()


# ------------------------------------------------------------------ per test


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path) -> str:
    if backend == "sqlite":
        path = tmp_path / "bousol.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    template = request.getfixturevalue("pg_template")
    if template is None:
        pytest.skip(
            f"PostgreSQL not reachable at {PG_URL}: start the server "
            "(pg_ctlcluster <version> main start) or set BOUSOL_TEST_PG_URL; "
            "BOUSOL_REQUIRE_PG=1 turns this skip into a failure"
        )
    template.reset()
    return template.url


@pytest.fixture
def engine(database_url) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def new_uow(engine) -> Callable[[], UnitOfWork]:
    factory = make_session_factory(engine)
    return lambda **options: UnitOfWork(factory, **options)


@pytest.fixture
def ledger(engine, new_uow) -> Ledger:
    return Ledger(engine, new_uow)


@pytest.fixture
def app(database_url):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()
