"""Payment throughput: the ledger's service layer against the raw database driver.

What is measured, per backend (SQLite in a temp file, PostgreSQL in a throw-away
schema ``bousol_bench`` of the database given by ``--pg-url``), single thread:

* **service**: ``operations.pay(UnitOfWork(session_factory), payer, payee_code=…,
  amount="1.25")``, one unit of work per payment, round-robin over 20 solistes paying
  5 prestataires, without an idempotency key;
* **service+key**: the same with a fresh idempotency key per payment (the key row is
  looked up and written in the same transaction as the movement);
* **raw**: what the ledger must minimally do per payment, with the bare driver
  (``sqlite3`` / ``psycopg`` 3) on the same tables and the same engine settings: one
  transaction with INSERT entry … RETURNING id, INSERT of the two postings, two
  ``balance = balance + x`` UPDATEs, and (since issue 7) the payment's audit record:
  read and lock the chain's head, INSERT the record (a JSON of what changed, its
  SHA-256 chained to the previous one), UPDATE the head; COMMIT. On PostgreSQL the
  schema's triggers (append-only, deferred "entry balances" check) fire for raw and
  service alike.
* **raw-no-audit**: the same without the audit record, as before issue 7: the
  difference between the two raw rates is what the audit trail costs the database
  itself.

Each variant is warmed up, then timed ``--repeat`` times in rotating order
(``time.perf_counter``); the best rate is the figure, the median is shown beside it.
The schema comes from the real migrations and the parties from the service layer;
at the end ``bousol.ledger.books.verify.verify`` must pass on each database (the raw
payments keep the ledger consistent too).

Goal: the service layer at no less than half the raw rate (service/raw >= 0.5).
This script reports the ratios; it asserts nothing about timing.

    python bench/payments.py [--n 2000] [--repeat 3] [--backend sqlite|postgresql|both]
                             [--pg-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `config` (imported by create_app) lives at the root

import flask_migrate  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import event, func, make_url, select  # noqa: E402

from bousol.app import create_app  # noqa: E402
from bousol.extensions import db  # noqa: E402
from bousol.ledger.access.parties import create_user  # noqa: E402
from bousol.ledger.books import operations  # noqa: E402
from bousol.ledger.books.verify import verify  # noqa: E402
from bousol.ledger.desk import exchange as desk_exchange  # noqa: E402
from bousol.ledger.kernel import audit, settings  # noqa: E402
from bousol.ledger.kernel.actors import SYSTEM, Actor  # noqa: E402
from bousol.ledger.kernel.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, make_session_factory  # noqa: E402
from bousol.ledger.kernel.driver_sql import DriverStatement  # noqa: E402
from bousol.ledger.kernel.uow import UnitOfWork  # noqa: E402
from bousol.ledger.models import Account, Entry, Party, Role  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bousol_bench"
N_SOLISTES = 20
N_PRESTATAIRES = 5
AMOUNT = "1.25"
AMOUNT_CENTS = 125
WARMUP = 50
VARIANTS = ("service", "service+key", "raw", "raw-no-audit")


# ---------------------------------------------------------------- set-up


@dataclass
class Ledger:
    """The parties of one benchmark database, as the service and the raw loop see them."""

    payers: list[Actor]
    payee_codes: list[str]
    account_of: dict[str, int]  # party code -> its BSOL main account id

    def pairs(self, start: int, n: int) -> list[tuple[Actor, str]]:
        """Payments ``start`` … ``start + n - 1``: round-robin payers, rotating payees."""
        p, q = len(self.payers), len(self.payee_codes)
        return [(self.payers[k % p], self.payee_codes[(k + k // p) % q])
                for k in range(start, start + n)]


def migrate(url: str) -> None:
    """Create the schema with the real migrations, through the app, then let go of it."""
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def pg_conninfo(pg_url: str, *, with_schema: bool) -> str:
    u = make_url(pg_url)
    params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
              "dbname": u.database}
    if with_schema:
        params["options"] = f"-csearch_path={PG_SCHEMA}"
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})


def reset_pg_schema(pg_url: str) -> str:
    """Drop and recreate ``bousol_bench``; return the SQLAlchemy URL that lives in it."""
    with psycopg.connect(pg_conninfo(pg_url, with_schema=False), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"})
    return url.render_as_string(hide_password=False)


def set_up_parties(session_factory, total_payments: int) -> Ledger:
    """Solistes and prestataires via the service layer, and enough Bou'Sols for all."""
    def uow() -> UnitOfWork:
        return UnitOfWork(session_factory)

    solistes = [
        create_user(uow(), SYSTEM, username=f"bench-soliste-{i:02d}",
                    password="bench-password", role="soliste")
        for i in range(N_SOLISTES)
    ]
    prestataires = [
        create_user(uow(), SYSTEM, username=f"bench-prestataire-{i:02d}",
                    password="bench-password", role="prestataire", filiere="alimentation")
        for i in range(N_PRESTATAIRES)
    ]
    # Each soliste pays at most ceil(total / N_SOLISTES) times; 1 € buys 1.05 B, so that
    # many euros (plus a margin) is enough. The bonus fund backs the 5 % bonus.
    per_soliste_euros = math.ceil(
        math.ceil(total_payments / N_SOLISTES) * AMOUNT_CENTS / 100) + 10
    # The funding exchanges are above the two-person thresholds (issue 13): the bench
    # measures payments, so its own set-up lifts them, as a treasurer's decision would.
    with uow() as unit:
        for key in ("exchange.approval_above_cents", "exchange.approval_daily_above_cents"):
            settings.change(unit.conn, key, "100000000", user_id=None, reason="bench")
        unit.commit()
    operations.record_subsidy(uow(), SYSTEM, euros=per_soliste_euros + 10, memo="bench")
    for s in solistes:
        desk_exchange.exchange(uow(), SYSTEM, party_code=s.party_code, euros=per_soliste_euros,
                            memo="bench")

    with session_factory() as session:
        rows = session.execute(
            select(Party.code, Account.id)
            .join(Account, Account.party_id == Party.id)
            .where(Account.currency == "BSOL", Account.purpose == "main")
        ).all()
    return Ledger(
        payers=[Actor(user_id=s.user_id, role=Role.SOLISTE, party_code=s.party_code,
                      username=s.username) for s in solistes],
        payee_codes=[p.party_code for p in prestataires],
        account_of={code: account_id for code, account_id in rows},
    )


# ---------------------------------------------------------------- the three loops


def service_loop(session_factory, pairs: list[tuple[Actor, str]],
                 keys: list[str] | None) -> None:
    pay = operations.pay
    if keys is None:
        for payer, payee in pairs:
            pay(UnitOfWork(session_factory), payer, payee_code=payee, amount=AMOUNT)
    else:
        for (payer, payee), key in zip(pairs, keys, strict=True):
            pay(UnitOfWork(session_factory), payer, payee_code=payee, amount=AMOUNT,
                idempotency_key=key)


def raw_rows(ledger: Ledger, pairs: list[tuple[Actor, str]]) -> list[tuple[int, int, int]]:
    """(actor user id, payer account id, payee account id) per payment."""
    return [(payer.user_id, ledger.account_of[payer.party_code], ledger.account_of[payee])
            for payer, payee in pairs]


def sqlite_raw_connect(path: str) -> sqlite3.Connection:
    """A bare sqlite3 connection with the engine's settings (see bousol.ledger.kernel.db)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    return conn


def raw_audit_record(seq: int, prev_hash: str, user_id: int, entry_id: int,
                     accounts: tuple[int, int]) -> tuple[dict, str]:
    """The payment's audit record as the ledger writes it (same fields, same chain)."""
    details = {"changes": [
        {"columns": ["actor_user_id", "created_at", "details", "kind", "memo",
                     "reverses_id"], "op": "insert", "rows": 1, "table": "entries",
         "values": {"id": [entry_id], "kind": ["payment"], "reverses_id": [None]}},
        {"columns": ["account_id", "amount", "currency", "entry_id"], "op": "insert",
         "rows": 2, "table": "postings",
         "values": {"account_id": list(accounts), "amount": [-AMOUNT_CENTS, AMOUNT_CENTS],
                    "currency": ["BSOL"], "entry_id": [entry_id]}},
        {"columns": [], "op": "update", "rows": 2, "table": "accounts", "values": {}},
    ]}
    row = {"seq": seq, "at": dt.datetime.now(dt.UTC), "user_id": user_id,
           "username": "bench", "address": "bench", "action": "bench payment",
           "details": json.dumps(details, ensure_ascii=False, sort_keys=True,
                                 separators=(",", ":")),
           "prev_hash": prev_hash}
    return row, audit.record_hash(SimpleNamespace(**row))


_AUDIT_INSERT = ("INSERT INTO audit_records (seq, at, user_id, username, address, action, "
                 "details, prev_hash, hash) VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0})")


def sqlite_raw_loop(conn: sqlite3.Connection, rows: list[tuple[int, int, int]], *,
                    with_audit: bool = True) -> None:
    cur = conn.cursor()
    for user_id, payer_acc, payee_acc in rows:
        # SQLAlchemy's SQLite DateTime storage format, so the rows look alike.
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        cur.execute("BEGIN IMMEDIATE")
        try:
            entry_id = cur.execute(
                "INSERT INTO entries (kind, created_at, actor_user_id) "
                "VALUES ('payment', ?, ?) RETURNING id",
                (now, user_id),
            ).fetchone()[0]
            cur.executemany(
                "INSERT INTO postings (entry_id, account_id, currency, amount) "
                "VALUES (?, ?, 'BSOL', ?)",
                ((entry_id, payer_acc, -AMOUNT_CENTS), (entry_id, payee_acc, AMOUNT_CENTS)),
            )
            cur.executemany(
                "UPDATE accounts SET balance = balance + ? WHERE id = ?",
                sorted(((-AMOUNT_CENTS, payer_acc), (AMOUNT_CENTS, payee_acc)),
                       key=lambda d: d[1]),
            )
            if with_audit:
                seq, prev = cur.execute(
                    "SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
                row, digest = raw_audit_record(seq + 1, prev, user_id, entry_id,
                                               (payer_acc, payee_acc))
                row["at"] = row["at"].strftime("%Y-%m-%d %H:%M:%S.%f")
                cur.execute(_AUDIT_INSERT.format("?"), (*row.values(), digest))
                cur.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
                            (seq + 1, digest))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise


def pg_raw_connect(pg_url: str) -> psycopg.Connection:
    conn = psycopg.connect(pg_conninfo(pg_url, with_schema=True), autocommit=False)
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
    return conn


def pg_raw_loop(conn: psycopg.Connection, rows: list[tuple[int, int, int]], *,
                with_audit: bool = True) -> None:
    cur = conn.cursor()
    for user_id, payer_acc, payee_acc in rows:
        now = dt.datetime.now(dt.UTC)
        try:
            cur.execute(
                "INSERT INTO entries (kind, created_at, actor_user_id) "
                "VALUES ('payment', %s, %s) RETURNING id",
                (now, user_id),
            )
            entry_id = cur.fetchone()[0]
            cur.executemany(
                "INSERT INTO postings (entry_id, account_id, currency, amount) "
                "VALUES (%s, %s, 'BSOL', %s)",
                ((entry_id, payer_acc, -AMOUNT_CENTS), (entry_id, payee_acc, AMOUNT_CENTS)),
            )
            cur.executemany(
                "UPDATE accounts SET balance = balance + %s WHERE id = %s",
                sorted(((-AMOUNT_CENTS, payer_acc), (AMOUNT_CENTS, payee_acc)),
                       key=lambda d: d[1]),
            )
            if with_audit:
                cur.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                seq, prev = cur.fetchone()
                row, digest = raw_audit_record(seq + 1, prev, user_id, entry_id,
                                               (payer_acc, payee_acc))
                cur.execute(_AUDIT_INSERT.format("%s"), (*row.values(), digest))
                cur.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
                            (seq + 1, digest))
            conn.commit()  # the deferred "entry balances" trigger runs here
        except BaseException:
            conn.rollback()
            raise


# ---------------------------------------------------------------- driver


@dataclass
class Result:
    backend: str
    n: int
    rates: dict[str, list[float]] = field(default_factory=dict)
    statements: dict[str, float] = field(default_factory=dict)
    verified: bool = False
    verify_lines: list[str] = field(default_factory=list)
    entries: int = 0

    def best(self, variant: str) -> float:
        return max(self.rates[variant])

    def median(self, variant: str) -> float:
        return statistics.median(self.rates[variant])


def count_statements(engine, run: Callable[[], None], n: int) -> float:
    """Statements sent per payment (untimed probe): those SQLAlchemy executes plus those
    the ledger's hot path sends straight to the driver (bousol.ledger.kernel.driver_sql); an
    executemany counts once."""
    count = 0

    def on_execute(*_args) -> None:
        nonlocal count
        count += 1

    original = DriverStatement._cursor

    def counting_cursor(self, conn, params, many):
        on_execute()
        return original(self, conn, params, many)

    event.listen(engine, "before_cursor_execute", on_execute)
    DriverStatement._cursor = counting_cursor
    try:
        run()
    finally:
        DriverStatement._cursor = original
        event.remove(engine, "before_cursor_execute", on_execute)
    return count / n


def bench_backend(backend: str, url: str, n: int, repeat: int,
                  raw_connect: Callable[[], object], raw_loop: Callable) -> Result:
    total = (WARMUP + n * repeat) * len(VARIANTS) + 20
    print(f"\n== {backend}: migrating, creating {N_SOLISTES} solistes and "
          f"{N_PRESTATAIRES} prestataires…", flush=True)
    migrate(url)
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    ledger = set_up_parties(session_factory, total)
    raw_conn = raw_connect()
    result = Result(backend, n, {v: [] for v in VARIANTS})
    cursor = 0  # the next payment number: each payment gets its own pair and key

    def take(count: int) -> list[tuple[Actor, str]]:
        nonlocal cursor
        pairs = ledger.pairs(cursor, count)
        cursor += count
        return pairs

    def runner(variant: str, count: int) -> Callable[[], None]:
        """Prepare ``count`` payments of ``variant`` (outside the timing); return the loop."""
        first = cursor
        pairs = take(count)
        if variant == "service":
            return lambda: service_loop(session_factory, pairs, None)
        if variant == "service+key":
            keys = [f"bench-{k}" for k in range(first, first + count)]
            return lambda: service_loop(session_factory, pairs, keys)
        rows = raw_rows(ledger, pairs)
        return lambda: raw_loop(raw_conn, rows, with_audit=variant == "raw")

    try:
        for variant in VARIANTS:  # warm-up: statement caches, prepared statements, pool
            runner(variant, WARMUP)()
        for rep in range(repeat):  # rotate the order so drift hits every variant alike
            order = VARIANTS[rep % len(VARIANTS):] + VARIANTS[:rep % len(VARIANTS)]
            for variant in order:
                loop = runner(variant, n)
                start = time.perf_counter()
                loop()
                elapsed = time.perf_counter() - start
                result.rates[variant].append(n / elapsed)
                print(f"   run {rep + 1}/{repeat} {variant:<12} {n / elapsed:9.1f} payments/s",
                      flush=True)
        for variant in ("service", "service+key"):
            result.statements[variant] = count_statements(engine, runner(variant, 10), 10)
    finally:
        raw_conn.close()

    with engine.connect() as conn:
        report = verify(conn)
        result.entries = conn.execute(
            select(func.count()).select_from(Entry.__table__)
        ).scalar_one()
        conn.rollback()
    result.verified = report.ok
    result.verify_lines = report.lines()
    engine.dispose()
    return result


def run_sqlite(n: int, repeat: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="bousol-bench-") as tmp:
        path = str(Path(tmp) / "bench.sqlite3")
        return bench_backend("sqlite", f"sqlite:///{path}", n, repeat,
                             lambda: sqlite_raw_connect(path), sqlite_raw_loop)


def run_postgresql(n: int, repeat: int, pg_url: str) -> Result:
    url = reset_pg_schema(pg_url)
    return bench_backend("postgresql", url, n, repeat,
                         lambda: pg_raw_connect(pg_url), pg_raw_loop)


def report(results: list[Result]) -> None:
    print("\n== Results (payments/s, best of runs; median in brackets)")
    for r in results:
        raw = r.best("raw")
        print(f"\n{r.backend}  (n={r.n} per run, {len(r.rates['raw'])} runs each)")
        for variant in VARIANTS:
            print(f"  {variant:<12} {r.best(variant):9.1f}  [{r.median(variant):9.1f}]")
        audit_ratio = r.best("raw") / r.best("raw-no-audit")
        print(f"  {'raw/raw-no-audit':<16} {audit_ratio:5.2f}x  (the audit record's own cost "
              "in the database)")
        for variant in ("service", "service+key"):
            ratio = r.best(variant) / raw
            median_ratio = r.median(variant) / r.median("raw")
            verdict = "meets" if ratio >= 0.5 else "BELOW"
            print(f"  {variant + '/raw':<16} {ratio:5.2f}x  [{median_ratio:5.2f}x]  "
                  f"({verdict} the 0.5x goal; {r.statements[variant]:.0f} statements "
                  "per payment)")
        print("  (statements: sent per payment, COMMIT excluded; on SQLite they include"
              " BEGIN IMMEDIATE)")
        print(f"  verify: {'PASSED' if r.verified else 'FAILED'} ({r.entries} entries)")
        for line in r.verify_lines:
            print(f"    {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="payments per timed run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL database; the bench uses (drops and recreates) "
                             f"only its schema {PG_SCHEMA}")
    args = parser.parse_args(argv)

    results = []
    if args.backend in ("sqlite", "both"):
        results.append(run_sqlite(args.n, args.repeat))
    if args.backend in ("postgresql", "both"):
        results.append(run_postgresql(args.n, args.repeat, args.pg_url))
    report(results)
    return 0 if all(r.verified for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
