"""The unit of work: one database transaction that commits once or rolls back.

Every operation of the ledger runs inside one. Leaving the block without calling
``commit()`` (an exception, an early return) rolls everything back, so a failed
operation never leaves half its rows behind.

A unit of work begins its transaction on entry. One that writes takes SQLite's write
lock at once (``BEGIN IMMEDIATE``); a ``read_only`` one reads a consistent snapshot
(SQLite: a deferred BEGIN in WAL mode; PostgreSQL: REPEATABLE READ, READ ONLY), so that
``verify`` or a page sees one state of the books, and holds no write lock.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from bousol.ledger.kernel.db import READ_ONLY


class UnitOfWork:
    def __init__(
        self,
        session_factory: Callable[[], Session],
        *,
        owns_session: bool = True,
        read_only: bool = False,
    ):
        self._session_factory = session_factory
        self._owns_session = owns_session
        self.read_only = read_only
        self.session: Session
        self._conn: Connection | None = None
        self._committed = False

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        if self.session.in_transaction():
            # A web request may have read (the logged-in user) before the operation
            # starts: end that read-only transaction so the operation reads fresh
            # rows under its own locks. Pending writes here would be a bug.
            if self.session.new or self.session.dirty or self.session.deleted:
                raise RuntimeError("unit of work started with unflushed changes")
            self.session.commit()
        self._committed = False
        options: dict[str, object] = {READ_ONLY: self.read_only}
        if self.read_only and self.session.get_bind().dialect.name == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        self._conn = self.session.connection(execution_options=options)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self.read_only and exc_type is None and not self._committed:
                self.session.commit()  # nothing to write; keeps loaded objects usable
            elif not self._committed:
                self.session.rollback()
        finally:
            self._conn = None
            if self._owns_session:
                self.session.close()

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def commit(self) -> None:
        self.session.commit()
        self._conn = None
        self._committed = True
