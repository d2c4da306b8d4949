"""Hot-path statements: written as SQLAlchemy Core, compiled once per dialect, run
straight through the driver's cursor.

``Connection.execute`` re-derives a cache key from the statement on every call and
builds a result object around the cursor; on a payment that cost more than the
database work itself (bench/payments.py measured the service layer at a quarter of
the raw driver's rate). A :class:`DriverStatement` compiles its Core statement once
per dialect (the connection's own, initialised dialect) and runs it on the DBAPI cursor
of the unit of work's connection: the same connection, inside the transaction
SQLAlchemy has already begun (``BEGIN IMMEDIATE`` on SQLite), committed or rolled back
by the unit of work. It refuses to run outside a driver-level transaction (an
autocommit connection would write postings and balances separately), and re-raises
driver errors as SQLAlchemy's (``IntegrityError``…), as ``execute`` would.
Parameters go to the driver as they are, so callers pass values the driver
understands: ints, strings, and datetimes through :func:`timestamp`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from bousol.ledger.kernel import audit_capture

# A connection record says so (kernel/db.py sets it): prepare these statements.
PREPARE_HOT_PATH = "bousol.prepare_hot_path"


class _Compiled:
    __slots__ = ("order", "sql")

    def __init__(self, sql: str, order: tuple[str, ...] | None):
        self.sql = sql
        self.order = order  # for positional paramstyles (qmark): the names, in order

    def bind(self, params: dict[str, Any]) -> dict[str, Any] | tuple:
        return params if self.order is None else tuple(params[name] for name in self.order)


def in_driver_transaction(conn: Connection) -> bool:
    """True when the DBAPI connection itself is inside a transaction block."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        return bool(dbapi.in_transaction)  # type: ignore[union-attr]
    # psycopg: outside autocommit, every statement runs in a transaction block.
    return not getattr(dbapi, "autocommit", True)


class DriverStatement:
    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        # Writes are counted for the audit trail, as the engine counts its own.
        self._writes = any(getattr(statement, f"is_{op}", False)
                           for op in ("insert", "update", "delete"))

    def compiled(self, dialect: Dialect) -> _Compiled:
        try:
            return self._compiled[dialect.name]
        except KeyError:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)  # a DML statement, never DDL
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            self._compiled[dialect.name] = _Compiled(str(compiled), order)
            return self._compiled[dialect.name]

    def _cursor(self, conn: Connection, params, many: bool):
        if not conn.in_transaction() or not in_driver_transaction(conn):
            raise RuntimeError("a DriverStatement runs inside a begun transaction only")
        compiled = self.compiled(conn.dialect)
        bound = [compiled.bind(p) for p in params] if many else compiled.bind(params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                # All dicts or all tuples: the one paramstyle of the dialect.
                cursor.executemany(compiled.sql, bound)  # type: ignore[arg-type]
            elif conn.connection.info.get(PREPARE_HOT_PATH):
                # PostgreSQL, no pooler: prepared at once (kernel/db.py says why only these).
                cursor.execute(compiled.sql, bound, prepare=True)  # type: ignore[call-arg]
            else:
                cursor.execute(compiled.sql, bound)
        except conn.dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise exc.DBAPIError.instance(
                compiled.sql, params, error, conn.dialect.loaded_dbapi.Error,
                dialect=conn.dialect,
            ) from error
        except BaseException:
            cursor.close()
            raise
        if self._writes:
            audit_capture.note_write(conn, self.statement, cursor.rowcount,
                             params if many else [params])
        return cursor

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[tuple]:
        cursor = self._cursor(conn, params, many=False)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if self._writes and rows and getattr(self.statement, "is_insert", False):
            audit_capture.note_ids(conn, self.statement, [row[0] for row in rows])
        return rows

    def first(self, conn: Connection, params: dict[str, Any]) -> tuple | None:
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def execute(self, conn: Connection, params: dict[str, Any]) -> None:
        self._cursor(conn, params, many=False).close()

    def executemany(self, conn: Connection, params: list[dict[str, Any]]) -> None:
        self._cursor(conn, params, many=True).close()


def timestamp(conn: Connection, value: dt.datetime) -> dt.datetime | str:
    """A UTC datetime as the column expects it: SQLite stores SQLAlchemy's text format."""
    if conn.dialect.name == "sqlite":
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
