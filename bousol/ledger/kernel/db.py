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
"""

from __future__ import annotations

import weakref

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 15_000
READ_ONLY = "bousol_read_only"  # execution option: this transaction never writes
_configured: weakref.WeakSet[Engine] = weakref.WeakSet()


def configure_engine(engine: Engine) -> Engine:
    from bousol.ledger.kernel import audit  # every writing transaction leaves its audit record

    audit.install()
    if engine.dialect.name != "sqlite" or engine in _configured:
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


def make_engine(url: str, **kwargs) -> Engine:
    """An engine outside Flask (benchmarks, tests, scripts), set up as the app's is."""
    return configure_engine(create_engine(url, **kwargs))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
