"""Reads that tolerate a few seconds of staleness, on a PostgreSQL streaming replica.

Only reads that say so go there (``stale_ok``: the association's reports, statements of
past months, exports, the public directory); everything a user just did (a receipt, a
balance after a payment, their home page) reads the primary. The replica is used while
it is *healthy*: reachable, in recovery (a real replica, not the primary named twice),
and no further behind than ``REPLICA_MAX_LAG_SECONDS``. Otherwise the reads fall back to
the primary, and :meth:`ReadRouter.health` says why (the admin page shows it).

The lag is measured on the replica itself::

    pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()     -- replayed all it received
    now() - pg_last_xact_replay_timestamp()                  -- else: age of what it shows

When the replica has replayed everything it received, it is current, however long ago
the last commit was (an idle primary is not a lagging replica). The health is probed at
most once every ``REPLICA_HEALTH_SECONDS`` (cached; a page never waits for a probe of
its own), and a replica that refuses a connection when a read begins is marked
unreachable at once, that read going to the primary.

SQLite has no replica: every read is on the primary, whatever ``DATABASE_REPLICA_URL``
says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bousol.ledger.kernel.db import make_engine, make_session_factory
from bousol.ledger.kernel.uow import UnitOfWork

DEFAULT_MAX_LAG_SECONDS = 5.0
DEFAULT_HEALTH_SECONDS = 3.0
CONNECT_TIMEOUT_SECONDS = 2

# The states of the replica, as health() reports them.
NONE = "none"  # no replica configured (or SQLite): every read on the primary
OK = "ok"
LAGGING = "lagging"
UNREACHABLE = "unreachable"
NOT_A_REPLICA = "not_a_replica"  # the URL names a server that is not in recovery

LAG_SQL = text("""
    SELECT pg_is_in_recovery() AS in_recovery,
           COALESCE(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false) AS caught_up,
           EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) AS behind
""")


@dataclass(frozen=True)
class ReplicaHealth:
    state: str
    lag_seconds: float | None = None  # None: unknown (unreachable, none)
    max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS
    error: str = ""

    @property
    def usable(self) -> bool:
        return self.state == OK


def _seconds(config: Mapping[str, object], key: str, default: float) -> float:
    raw = config.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{key}: a number of seconds, not {raw!r}") from None
    if not 0 <= value < 86_400:
        raise ValueError(f"{key}: between 0 and 86400 seconds, not {raw!r}")
    return value


class ReadRouter:
    """Where a read that tolerates staleness goes: the replica while it is healthy."""

    def __init__(self, replica: Engine | None, *, max_lag_seconds: float = DEFAULT_MAX_LAG_SECONDS,
                 health_seconds: float = DEFAULT_HEALTH_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic):
        self.replica = replica
        self.max_lag_seconds = max_lag_seconds
        self.health_seconds = health_seconds
        self._monotonic = monotonic
        self._factory: sessionmaker[Session] | None = (
            make_session_factory(replica) if replica is not None else None)
        self._lock = threading.Lock()
        self._health: ReplicaHealth | None = None
        self._checked_at = 0.0
        self.probes = 0  # how many times the replica was asked (the cache's proof)

    @classmethod
    def from_config(cls, config: Mapping[str, object], primary: Engine, *,
                    pooler: str | None = None) -> ReadRouter:
        """``DATABASE_REPLICA_URL``, ``REPLICA_MAX_LAG_SECONDS`` (5),
        ``REPLICA_HEALTH_SECONDS`` (3); none on SQLite."""
        max_lag = _seconds(config, "REPLICA_MAX_LAG_SECONDS", DEFAULT_MAX_LAG_SECONDS)
        every = _seconds(config, "REPLICA_HEALTH_SECONDS", DEFAULT_HEALTH_SECONDS)
        url = str(config.get("DATABASE_REPLICA_URL") or "").strip()
        if not url or primary.dialect.name != "postgresql":
            return cls(None, max_lag_seconds=max_lag, health_seconds=every)
        engine = make_engine(url, pool_pre_ping=True, pooler=pooler,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
        if engine.dialect.name != "postgresql":
            raise ValueError("DATABASE_REPLICA_URL: a PostgreSQL replica of DATABASE_URL")

        @event.listens_for(engine, "checkout")
        def _read_only(dbapi_connection, _record, _proxy):
            # SQLAlchemy puts a connection back with read_only=False, which psycopg
            # sends as BEGIN ... READ WRITE: a hot standby refuses that. Every
            # transaction on the replica is READ ONLY.
            dbapi_connection.read_only = True

        return cls(engine, max_lag_seconds=max_lag, health_seconds=every)

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()

    # ------------------------------------------------------------ health

    def health(self) -> ReplicaHealth:
        """The replica's health, probed at most once every ``health_seconds``."""
        if self.replica is None:
            return ReplicaHealth(NONE, max_lag_seconds=self.max_lag_seconds)
        known = self._health
        if known is not None and self._monotonic() - self._checked_at < self.health_seconds:
            return known
        # One thread probes; the others meanwhile go on with what was known (a replica
        # that does not answer makes one request wait for the connect timeout, not all).
        if not self._lock.acquire(blocking=known is None):
            return known  # type: ignore[return-value]
        try:
            if self._health is None or (
                    self._monotonic() - self._checked_at >= self.health_seconds):
                self._health = self.probe()
                self._checked_at = self._monotonic()
            return self._health
        finally:
            self._lock.release()

    def probe(self) -> ReplicaHealth:
        """Ask the replica now (health() caches this)."""
        assert self.replica is not None
        self.probes += 1
        try:
            with self.replica.connect() as conn:
                row = conn.execute(LAG_SQL).one()
                conn.rollback()
        except DBAPIError as error:
            return ReplicaHealth(UNREACHABLE, max_lag_seconds=self.max_lag_seconds,
                                 error=str(error.orig).strip().splitlines()[0][:200])
        if not row.in_recovery:
            return ReplicaHealth(NOT_A_REPLICA, max_lag_seconds=self.max_lag_seconds)
        if row.caught_up:
            lag = 0.0
        elif row.behind is None:  # nothing replayed since it started: unknown age
            return ReplicaHealth(LAGGING, None, self.max_lag_seconds)
        else:
            lag = max(float(row.behind), 0.0)
        state = OK if lag <= self.max_lag_seconds else LAGGING
        return ReplicaHealth(state, lag, self.max_lag_seconds)

    def mark_unreachable(self, error: Exception) -> None:
        """A read could not connect: no read goes there until the next probe is due."""
        orig = getattr(error, "orig", error)
        with self._lock:
            self._health = ReplicaHealth(UNREACHABLE, max_lag_seconds=self.max_lag_seconds,
                                         error=str(orig).strip().splitlines()[0][:200])
            self._checked_at = self._monotonic()

    # ------------------------------------------------------------ units of work

    def stale_read(self, primary_factory: Callable[[], Session], *,
                   owns_primary_session: bool = True) -> UnitOfWork:
        """A read-only unit of work on the replica if it is healthy, else on the primary."""
        if self._factory is None or not self.health().usable:
            return UnitOfWork(primary_factory, owns_session=owns_primary_session,
                              read_only=True)
        return ReplicaUnitOfWork(self, self._factory, primary_factory,
                                 owns_primary_session=owns_primary_session)


class ReplicaUnitOfWork(UnitOfWork):
    """A read-only unit of work on the replica; when the replica refuses the connection
    as the read begins, the read runs on the primary instead (and the replica is marked
    unreachable). ``source`` says where it ran."""

    def __init__(self, router: ReadRouter, replica_factory: Callable[[], Session],
                 primary_factory: Callable[[], Session], *, owns_primary_session: bool):
        super().__init__(replica_factory, owns_session=True, read_only=True)
        self.source = "replica"
        self._router = router
        self._primary_factory = primary_factory
        self._owns_primary_session = owns_primary_session

    def __enter__(self) -> UnitOfWork:
        try:
            return super().__enter__()
        except OperationalError as error:  # could not connect (stopped, restarting)
            self.session.close()
            self._router.mark_unreachable(error)
            self.source = "primary"
            self._session_factory = self._primary_factory
            self._owns_session = self._owns_primary_session
            return super().__enter__()
