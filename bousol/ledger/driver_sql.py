"""Hot-path statements: written as SQLAlchemy Core, compiled once per dialect, run
straight through the driver's cursor.

``Connection.execute`` re-derives a cache key from the statement on every call and
builds a result object around the cursor; on a payment that cost more than the
database work itself (bench/payments.py measured the service layer at a quarter of
the raw driver's rate). A :class:`DriverStatement` compiles its Core statement once
per dialect, with named parameters, and runs it on the DBAPI cursor of the unit of
work's connection: the same connection, inside the transaction SQLAlchemy has already
begun (``BEGIN IMMEDIATE`` on SQLite), committed or rolled back by the unit of work.
Driver errors are re-raised as SQLAlchemy's (``IntegrityError``…), as ``execute`` would.
Parameters go to the driver as they are, so callers pass values the driver
understands: ints, strings, and datetimes through :func:`timestamp`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

_named_dialects: dict[str, Dialect] = {}


def _named(dialect: Dialect) -> Dialect:
    """The connection's dialect, but rendering ``:name`` / ``%(name)s`` parameters."""
    if dialect.paramstyle in ("named", "pyformat"):
        return dialect
    if dialect.name not in _named_dialects:
        _named_dialects[dialect.name] = type(dialect)(paramstyle="named")
    return _named_dialects[dialect.name]


class DriverStatement:
    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._sql: dict[str, str] = {}

    def sql(self, dialect: Dialect) -> str:
        try:
            return self._sql[dialect.name]
        except KeyError:
            sql = str(self.statement.compile(dialect=_named(dialect)))
            self._sql[dialect.name] = sql
            return sql

    def _cursor(self, conn: Connection, params, many: bool):
        if not conn.in_transaction():
            raise RuntimeError("a DriverStatement runs inside a begun transaction only")
        sql = self.sql(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        except conn.dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise exc.DBAPIError.instance(
                sql, params, error, conn.dialect.loaded_dbapi.Error,
                dialect=conn.dialect,
            ) from error
        return cursor

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[tuple]:
        cursor = self._cursor(conn, params, many=False)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

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
