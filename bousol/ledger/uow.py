"""The unit of work: one database transaction that commits once or rolls back.

Every operation of the ledger runs inside one. Leaving the block without calling
``commit()`` (an exception, an early return) rolls everything back, so a failed
operation never leaves half its rows behind.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy.orm import Session


class UnitOfWork:
    def __init__(self, session_factory: Callable[[], Session], *, owns_session: bool = True):
        self._session_factory = session_factory
        self._owns_session = owns_session
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
        self._conn = None
        self._committed = False
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self._committed:
                self.session.rollback()
        finally:
            self._conn = None
            if self._owns_session:
                self.session.close()

    @property
    def conn(self) -> Connection:
        # Asked for on every statement of the hot path: look the connection up once.
        if self._conn is None:
            self._conn = self.session.connection()
        return self._conn

    def commit(self) -> None:
        self.session.commit()
        self._conn = None
        self._committed = True
