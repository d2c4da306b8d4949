"""Engine settings that make both databases safe for money.

SQLite: WAL with ``synchronous=FULL`` (with NORMAL the last commits can vanish on power
loss), a busy timeout, foreign keys on, and transactions begun by us, not by pysqlite.
SQLAlchemy silently drops ``FOR UPDATE`` on SQLite and, by default, reads outside the
write transaction: two spenders could both see the same balance. So every transaction
that may write starts with ``BEGIN IMMEDIATE`` and takes the write lock at once (the
recipe of the SQLAlchemy SQLite dialect docs; measured in
../shared/ledger-engineering.md). Only connections explicitly marked read-only
(execution option ``READ_ONLY``: page views, ``verify``, the password check) begin a
plain deferred ``BEGIN``: in WAL mode they read a snapshot and never hold the write
lock, so a slow page or a flood of logins cannot stall payments.

PostgreSQL: READ COMMITTED, and the ledger locks the account rows it moves with
``SELECT … FOR UPDATE`` in ascending id order, so crossing transfers never deadlock.
Behind PgBouncer in transaction pooling mode (``DATABASE_POOLER=pgbouncer``, or a URL on
PgBouncer's port 6432), each transaction may run on another server connection: nothing
relies on session state (only ``SET LOCAL`` and ``pg_advisory_xact_lock``), and psycopg's
server-side prepared statements (made after 5 runs of a query; PgBouncer before 1.21
cannot follow them) are turned off (``prepare_threshold=None``). docs/scaling.md.
"""

from __future__ import annotations

import weakref

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from bousol.ledger.kernel.driver_sql import PREPARE_HOT_PATH

SQLITE_BUSY_TIMEOUT_MS = 15_000
READ_ONLY = "bousol_read_only"  # execution option: this transaction never writes
PGBOUNCER_PORT = 6432
_configured: weakref.WeakSet[Engine] = weakref.WeakSet()


def behind_pooler(url: str | URL, pooler: str | None = None) -> bool:
    """Whether the PostgreSQL URL goes through a transaction pooler: ``pooler`` (the
    ``DATABASE_POOLER`` setting) ``pgbouncer`` or ``none``; unset, PgBouncer's port."""
    choice = (pooler or "").strip().lower()
    if choice == "pgbouncer":
        return True
    if choice in ("none", "direct"):
        return False
    if choice:
        raise ValueError(f"DATABASE_POOLER: pgbouncer or none, not {pooler!r}")
    return make_url(url).port == PGBOUNCER_PORT


def configure_engine(engine: Engine, *, pooler: str | None = None) -> Engine:
    from bousol.ledger.kernel import audit  # every writing transaction leaves its audit record

    audit.install()
    if engine in _configured:
        return engine
    if engine.dialect.name == "postgresql":
        _configured.add(engine)
        pooled = behind_pooler(engine.url, pooler)

        # No statement is prepared on its own (psycopg prepares one after its fifth
        # run): PostgreSQL may then switch to a generic plan, blind to the values, and
        # a query whose cost depends on them (the programme's own postings, or the
        # world's account that every exchange touches) went from 15 ms to 5 s at its
        # tenth run on a connection (issue 18). Every query is planned with its values;
        # only the hot path's statements, by key, are prepared, explicitly
        # (driver_sql.DriverStatement), and not behind a pooler.
        @event.listens_for(engine, "do_connect")
        def _no_implicit_prepare(_dialect, _record, _cargs, cparams):
            cparams["prepare_threshold"] = None

        @event.listens_for(engine, "connect")
        def _mark_prepare(_dbapi_connection, record):
            record.info[PREPARE_HOT_PATH] = not pooled

        return engine
    if engine.dialect.name != "sqlite":
        return engine
    _configured.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised via engine
        # Let us emit BEGIN ourselves (pysqlite's own BEGIN would be DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def make_engine(url: str, *, pooler: str | None = None, **kwargs) -> Engine:
    """An engine outside Flask (benchmarks, tests, scripts), set up as the app's is."""
    return configure_engine(create_engine(url, **kwargs), pooler=pooler)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
