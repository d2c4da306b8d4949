"""The territory-scale benchmark (issue 18): a 10-million-entry ledger, every role's
pages and API calls, the reports, the FEC export and verify, each beside a baseline.

1. **Build** (skipped with ``--reuse``): the database ``--db`` (default ``bousol_scale``)
   on the server of ``--pg-url`` is dropped and created (nothing else on the server is
   touched), migrated with the real migrations, then loaded by COPY
   (bench/scale_build.py): 160,000 solistes, 6,000 prestataires, ``--entries`` entries
   over two years (payments, exchanges, reconversions, B2B, reversals, subsidies, the
   desk's daily cash deposits), one big merchant (a supermarket, P-000001) holding 10 %
   of them. Then one audit record for the load, the maintained figures rebuilt (each
   ``rebuild(conn)`` that exists: report figures, account days; then the closed months
   sealed, as ``flask bousol verify --seal`` does), VACUUM ANALYZE,
   and the users made with the service layer: a soliste (S-000001, the busiest), the
   big merchant, a small merchant, an admin, the CCAS (with an aid programme funded at
   the desk) and a desk clerk; API tokens through ``POST /api/v1/tokens``.
2. **Measure**, through the real app (``create_app`` on that database, the Flask test
   client logged in as each user; the API with bearer tokens): each figure ``--repeat``
   times (heavy ones ``--heavy-repeat`` times, and no more than ``--budget`` seconds),
   p50 and p95; beside it, the **baseline**: the same result computed by one
   hand-written SQL query through raw psycopg, on the same data, in the same run.
3. **Print** a Markdown table (what | n | p50 | p95 | baseline p95 | ratio), and
   ``--json FILE`` the raw numbers. A page that does not answer 200 is reported as
   such (a bug), never skipped. Nothing is asserted.

    python bench/scale.py [--entries 10000000] [--repeat 20] [--keep] [--reuse]
                          [--json FILE] [--pg-url URL] [--db bousol_scale]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `config` (imported by create_app) lives at the root

import flask_migrate  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from bench import scale_build  # noqa: E402
from bousol.app import create_app  # noqa: E402
from bousol.extensions import db  # noqa: E402
from bousol.ledger.kernel import clock  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/"
DEFAULT_DB = "bousol_scale"
PASSWORD = "bench-scale-password"
USERS = {  # username: (role, party: "soliste" | "big" | "small" | None)
    "bench-soliste": ("soliste", "soliste"),
    "bench-hyper": ("prestataire", "big"),
    "bench-petit": ("prestataire", "small"),
    "bench-admin": ("admin", None),
    "bench-ccas": ("ccas", None),
    "bench-guichet": ("bank", None),
}


def say(text: str) -> None:
    print(text, flush=True)


# ------------------------------------------------------------------ database


def server_conninfo(pg_url: str, dbname: str) -> str:
    u = make_url(pg_url)
    params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
              "dbname": dbname}
    return psycopg.conninfo.make_conninfo(
        "", **{k: v for k, v in params.items() if v is not None})


def sqlalchemy_url(pg_url: str, dbname: str) -> str:
    return make_url(pg_url).set(database=dbname).render_as_string(hide_password=False)


def database_info(pg_url: str, dbname: str) -> dict | None:
    """The build's description, kept as the database's comment; None: no such database."""
    with psycopg.connect(server_conninfo(pg_url, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (dbname,)).fetchone()
    if row is None:
        return None
    try:
        return json.loads(row[0] or "")
    except ValueError:
        return {}


def recreate_database(pg_url: str, dbname: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", dbname) or dbname in ("postgres", "test"):
        raise SystemExit(f"refusing to drop database {dbname!r}")
    with psycopg.connect(server_conninfo(pg_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {dbname}")


def drop_database(pg_url: str, dbname: str) -> None:
    with psycopg.connect(server_conninfo(pg_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def migrate(url: str) -> None:
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


# ------------------------------------------------------------------ build


def create_users(engine, loaded: scale_build.Loaded) -> dict[str, object]:
    """The log-ins of the measured pages, through the service layer; the CCAS's aid
    programme, funded at the desk."""
    from bousol.ledger.access.parties import create_user
    from bousol.ledger.ccas import vouchers
    from bousol.ledger.desk import exchange as desk_exchange
    from bousol.ledger.kernel import settings
    from bousol.ledger.kernel.actors import SYSTEM, Actor, Role
    from bousol.ledger.kernel.db import make_session_factory
    from bousol.ledger.kernel.uow import UnitOfWork

    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    party_of = {"soliste": loaded.soliste_code, "big": loaded.big_merchant_code,
                "small": loaded.small_merchant_code}
    made = {}
    for username, (role, party) in USERS.items():
        made[username] = create_user(uow(), SYSTEM, username=username, password=PASSWORD,
                                     role=role, name=username,
                                     party_code=party_of[party] if party else None)
    ccas = made["bench-ccas"]
    ccas_actor = Actor(user_id=ccas.user_id, role=Role.CCAS, party_code=ccas.party_code,
                       username=ccas.username)
    today = clock.paris_today()
    programme = vouchers.create_programme(
        uow(), ccas_actor, name="Aide alimentaire (bench)", budget="50000",
        starts_on=(today - dt.timedelta(days=365)).isoformat(),
        ends_on=(today + dt.timedelta(days=365)).isoformat())
    with uow() as unit:  # the bench's own funding: above the two-person thresholds
        for key in ("exchange.approval_above_cents", "exchange.approval_daily_above_cents"):
            settings.change(unit.conn, key, "100000000", user_id=None, reason="bench")
        unit.commit()
    clerk = made["bench-guichet"]
    funded: str = "20000 €"
    try:
        desk_exchange.exchange(uow(), Actor(user_id=clerk.user_id, role=Role.BANK,
                                            username=clerk.username),
                               party_code=str(ccas.party_code), euros="20000",
                               programme_id=programme.id, memo="bench")
    except Exception as error:  # reported: the posting engine of the day refused it
        funded = f"FAILED: {type(error).__name__}: {error}"[:300]
    say(f"  users: {', '.join(made)}; CCAS programme {programme.id} funded: {funded}")
    return {"programme_id": programme.id, "ccas_code": ccas.party_code,
            "programme_funded": funded}


def seal_reused(args) -> str:
    """Seal the closed months of a database built before sealing existed."""
    from bousol.ledger import domains
    from bousol.ledger.kernel.db import make_engine

    domains.load()
    engine = make_engine(sqlalchemy_url(args.pg_url, args.db))
    try:
        outcome = scale_build.rebuild_maintained(
            engine, isolate_mib=args.rebuild_mib,
            only=("bousol.ledger.books.seals",))
    finally:
        engine.dispose()
    say(f"  sealed: {outcome}")
    return str(outcome)


def build(args, shape: scale_build.Shape) -> dict:
    from bousol.ledger.kernel.db import make_engine

    started = time.perf_counter()
    url = sqlalchemy_url(args.pg_url, args.db)
    conninfo = server_conninfo(args.pg_url, args.db)
    say(f"== Build: {shape.entries:,} entries, {shape.solistes:,} solistes, "
        f"{shape.prestataires:,} prestataires in database {args.db}")
    recreate_database(args.pg_url, args.db)
    t0 = time.perf_counter()
    migrate(url)
    say(f"  migrated ({time.perf_counter() - t0:.1f} s)")
    end = clock.now()
    loaded = scale_build.load(conninfo, shape, end=end, say=say)
    engine = make_engine(url)
    try:
        seq = scale_build.audit_load(engine, loaded, shape)
        say(f"  audit record n° {seq} for the load")
        t0 = time.perf_counter()
        maintained = scale_build.rebuild_maintained(engine, isolate_mib=args.rebuild_mib)
        for name, outcome in maintained.items():
            say(f"  maintained figures {name}: "
                + (f"rebuilt in {outcome} s" if isinstance(outcome, float) else str(outcome)))
        vacuum = scale_build.vacuum_analyze(conninfo)
        say(f"  VACUUM ANALYZE ({vacuum:.1f} s)")
        extra = create_users(engine, loaded)
    finally:
        engine.dispose()
    info = {"shape": asdict(shape) | {"end": end.isoformat()}, "loaded": asdict(loaded),
            "maintained": maintained, "vacuum_seconds": round(vacuum, 1),
            "build_seconds": round(time.perf_counter() - started, 1), **extra}
    with psycopg.connect(server_conninfo(args.pg_url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(args.db), sql.Literal(json.dumps(info))))
    say(f"  built in {info['build_seconds']:.0f} s")
    return info


# ------------------------------------------------------------------ measuring


@dataclass
class Figure:
    what: str
    samples: list[float] = field(default_factory=list)  # seconds
    baseline: list[float] = field(default_factory=list)
    status: str = "ok"  # or what went wrong (a page that 404s or 500s is a bug)
    extra: dict = field(default_factory=dict)

    @staticmethod
    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, max(0, math_ceil(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def p95(self) -> float | None:
        return self.pct(self.samples, 0.95)

    @property
    def base_p95(self) -> float | None:
        return self.pct(self.baseline, 0.95)

    @property
    def ratio(self) -> float | None:
        if self.p95 is None or not self.base_p95:
            return None
        return self.p95 / self.base_p95


def math_ceil(x: float) -> int:
    return -int(-x // 1)


class Bench:
    def __init__(self, args, info: dict):
        self.args, self.info = args, info
        self.figures: list[Figure] = []
        self.raw = psycopg.connect(server_conninfo(args.pg_url, args.db), autocommit=True)

    def skipped(self, what: str) -> bool:
        text = what.lower()
        if self.args.only and not any(part.lower() in text for part in self.args.only):
            return True
        return any(part.lower() in text for part in self.args.skip)

    # -- timing

    def _times(self, run: Callable[[], object], repeat: int) -> list[float]:
        out: list[float] = []
        deadline = time.perf_counter() + self.args.budget
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            out.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                break
        return out

    def figure(self, what: str, run: Callable[[], object], baseline: Callable[[], object] | None,
               *, heavy: bool = False, warm: bool = True, repeat: int | None = None
               ) -> Figure:
        if repeat is None:
            repeat = self.args.heavy_repeat if heavy else self.args.repeat
        fig = Figure(what)
        self.figures.append(fig)
        if self.skipped(what):
            fig.status = "skipped (--skip)"
            return fig
        try:
            if warm and not heavy:
                run()
            fig.samples = self._times(run, repeat)
        except Exception as error:
            fig.status = f"{type(error).__name__}: {error}"[:200]
        if baseline is not None:
            try:
                if warm and not heavy:
                    baseline()
                fig.baseline = self._times(baseline, repeat)
            except Exception as error:
                fig.status += f" (baseline: {type(error).__name__}: {error})"[:200]
        say(f"  {what}: " + (f"p50 {ms(fig.p50)}  p95 {ms(fig.p95)}  baseline p95 "
                             f"{ms(fig.base_p95)}" if fig.samples else "") +
            ("" if fig.status == "ok" else f"  [{fig.status}]"))
        return fig

    def sql(self, query: str, params: tuple = ()) -> Callable[[], object]:
        def run():
            return self.raw.execute(query, params).fetchall()
        return run


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 10:
        return f"{seconds:,.1f} s"
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    return f"{seconds * 1000:,.1f} ms"


class PageError(Exception):
    pass


def getter(client, url: str, *, headers: dict | None = None) -> Callable[[], object]:
    def run():
        response = client.get(url, headers=headers or {})
        if response.status_code != 200:
            raise PageError(f"GET {url} → {response.status_code}")
        return response.data
    return run


def log_in(client, username: str) -> None:
    page = client.get("/connexion")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    response = client.post("/connexion", data={
        "csrf_token": token.group(1) if token else "", "username": username,
        "password": PASSWORD})
    if response.status_code not in (302, 303):
        raise PageError(f"log-in of {username} → {response.status_code}")


def api_token(client, username: str) -> str:
    response = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
    if response.status_code not in (200, 201):
        raise PageError(f"token of {username} → {response.status_code} {response.text[:200]}")
    return response.get_json()["token"]


# The baselines: one hand-written query each (psycopg, same data, same run).
LINES_SQL = """
SELECT p.entry_id, e.kind, e.created_at, e.memo, p.currency, p.amount,
       (SELECT pa.code FROM postings o JOIN accounts a ON a.id = o.account_id
          JOIN parties pa ON pa.id = a.party_id
         WHERE o.entry_id = p.entry_id AND o.account_id <> p.account_id LIMIT 1) AS other
  FROM unnest(%s::int[]) AS account(id)
 CROSS JOIN LATERAL (
       SELECT q.entry_id, q.account_id, q.currency, q.amount FROM postings q
        WHERE q.account_id = account.id AND q.entry_id < %s
        ORDER BY q.entry_id DESC LIMIT %s) AS p
  JOIN entries e ON e.id = p.entry_id
 ORDER BY p.entry_id DESC LIMIT %s"""
HOME_SQL = """
WITH latest AS (
  SELECT p.entry_id, e.kind, e.created_at, p.amount FROM unnest(%s::int[]) AS account(id)
   CROSS JOIN LATERAL (SELECT q.entry_id, q.amount FROM postings q
                        WHERE q.account_id = account.id
                        ORDER BY q.entry_id DESC LIMIT 10) AS p
    JOIN entries e ON e.id = p.entry_id
   ORDER BY p.entry_id DESC LIMIT 10)
SELECT 'line', entry_id, kind, amount FROM latest
UNION ALL SELECT 'balance', id, currency, balance FROM accounts WHERE id = ANY(%s)"""
ME_SQL = """
WITH latest AS (
  SELECT p.entry_id, e.kind, e.created_at, p.amount FROM postings p
    JOIN entries e ON e.id = p.entry_id WHERE p.account_id = ANY(%s)
   ORDER BY p.entry_id DESC LIMIT 10)
SELECT 'line', entry_id, kind, amount FROM latest
UNION ALL SELECT 'balance', id, currency, balance FROM accounts WHERE id = ANY(%s)"""
ME_SQL = "SELECT currency, balance FROM accounts WHERE party_id = %s AND purpose = 'main'"
JOURNAL_SQL = """
SELECT e.id, e.kind, e.created_at, p.account_id, p.amount
  FROM (SELECT * FROM entries ORDER BY id DESC LIMIT 30) e
  JOIN postings p ON p.entry_id = e.id ORDER BY e.id DESC, p.id"""
MEMBERS_SQL = """
SELECT code, name, kind, commune, membership_until FROM parties
 WHERE kind IN ('soliste', 'prestataire') ORDER BY kind, number LIMIT 50"""
REPORT_SQL = """
SELECT date_trunc('month', e.created_at AT TIME ZONE 'Europe/Paris') AS month, pa.filiere,
       count(*), sum(p.amount)
  FROM entries e JOIN postings p ON p.entry_id = e.id AND p.amount > 0
  JOIN accounts a ON a.id = p.account_id JOIN parties pa ON pa.id = a.party_id
 WHERE e.kind = 'payment' AND pa.kind = 'prestataire'
   AND e.created_at >= %s AND e.created_at < %s
 GROUP BY 1, 2"""
AUDIT_SQL = "SELECT * FROM audit_records ORDER BY seq DESC LIMIT 50"
SUPPLY_SQL = """
SELECT coalesce(system_code, 'members'), currency, sum(balance) FROM accounts
 GROUP BY 1, 2"""
PROGRAMME_SQL = """
SELECT date_trunc('month', e.created_at), e.kind, count(*), sum(p.amount)
  FROM postings p JOIN entries e ON e.id = p.entry_id
 WHERE p.account_id = (SELECT account_id FROM aid_programmes WHERE id = %s)
 GROUP BY 1, 2"""
PROGRAMMES_SQL = """
SELECT g.id, g.name, a.balance FROM aid_programmes g JOIN accounts a ON a.id = g.account_id"""
FEC_SQL = """
COPY (SELECT e.id, e.kind, e.created_at, e.memo, p.account_id, p.currency, p.amount
        FROM entries e JOIN postings p ON p.entry_id = e.id
       WHERE e.created_at >= '{0}' AND e.created_at < '{1}' ORDER BY e.id, p.id)
  TO STDOUT"""
VERIFY_SQL = """
SELECT count(*) FROM accounts a LEFT JOIN (
  SELECT account_id, sum(amount) AS total FROM postings GROUP BY account_id) s
  ON s.account_id = a.id WHERE a.balance <> coalesce(s.total, 0)"""


def party_accounts(raw, code: str) -> tuple[int, list[int]]:
    rows = raw.execute("SELECT p.id, a.id FROM parties p JOIN accounts a ON a.party_id = p.id "
                       "WHERE p.code = %s ORDER BY a.currency", (code,)).fetchall()
    return rows[0][0], [r[1] for r in rows]


def deep_entry(raw, accounts: list[int], depth: float = 0.9) -> tuple[int, int]:
    """(the id of the entry at ``depth`` of the account's history, how many it has)."""
    count = raw.execute("SELECT count(*) FROM postings WHERE account_id = ANY(%s)",
                        (accounts,)).fetchone()[0]
    row = raw.execute("SELECT entry_id FROM postings WHERE account_id = ANY(%s) "
                      "ORDER BY entry_id DESC OFFSET %s LIMIT 1",
                      (accounts, int(count * depth))).fetchone()
    return (row[0] if row else 1), count


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following


def paris_instant(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(0), scale_build.PARIS).isoformat()


def vm_kib(field_name: str) -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def measure(args, info: dict) -> Bench:
    bench = Bench(args, info)
    raw = bench.raw
    url = sqlalchemy_url(args.pg_url, args.db)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    loaded = info["loaded"]
    last_day = dt.date.fromisoformat(loaded["last_day"])
    first_day = dt.date.fromisoformat(loaded["first_day"])

    clients = {}
    tokens = {}
    for username in USERS:
        client = app.test_client()
        log_in(client, username)
        clients[username] = client
        tokens[username] = api_token(app.test_client(), username)

    def bearer(username: str) -> dict:
        return {"Authorization": f"Bearer {tokens[username]}"}

    say("\n== Measure")
    for username, label, code, home in (
            ("bench-soliste", "soliste", loaded["soliste_code"], "/soliste/"),
            ("bench-hyper", "big merchant", loaded["big_merchant_code"], "/prestataire/"),
            ("bench-petit", "small merchant", loaded["small_merchant_code"], "/prestataire/")):
        client = clients[username]
        party_id, accounts = party_accounts(raw, code)
        deep, count = deep_entry(raw, accounts)
        history = home + "historique"
        try:  # a page that fails is reported by its figure below, not here
            first_page = client.get(history)
            keyset = (re.search(r"avant=(\d+)", first_page.text)
                      if first_page.status_code == 200 else None)
        except Exception:
            keyset = None
        say(f"  -- {label} {code}: {count:,} postings; deep page before entry {deep}; "
            f"first page links to avant={keyset.group(1) if keyset else 'NONE'}")
        bench.figure(f"{label}: home `{home}`", getter(client, home),
                     bench.sql(HOME_SQL, (accounts, accounts)))
        bench.figure(f"{label}: history, first page", getter(client, history),
                     bench.sql(LINES_SQL, (accounts, 2**62, 50, 50)))
        if keyset:
            bench.figure(f"{label}: history, second page (`avant=` link)",
                         getter(client, f"{history}?avant={keyset.group(1)}"),
                         bench.sql(LINES_SQL, (accounts, int(keyset.group(1)), 50, 50)))
        bench.figure(f"{label}: history, deep page (90 % back)",
                     getter(client, f"{history}?avant={deep}"),
                     bench.sql(LINES_SQL, (accounts, deep, 50, 50)))
        bench.figure(f"{label}: `GET /api/v1/me`",
                     getter(client, "/api/v1/me", headers=bearer(username)),
                     bench.sql(ME_SQL, (party_id,)))
        bench.figure(f"{label}: `GET /api/v1/me/entries?limit=50`",
                     getter(client, "/api/v1/me/entries?limit=50", headers=bearer(username)),
                     bench.sql(LINES_SQL, (accounts, 2**62, 50, 50)))
        bench.figure(f"{label}: `GET /api/v1/me/entries?limit=50&before=` deep",
                     getter(client, f"/api/v1/me/entries?limit=50&before={deep}",
                            headers=bearer(username)),
                     bench.sql(LINES_SQL, (accounts, deep, 50, 50)))

    say("  -- admin (association)")
    admin = clients["bench-admin"]
    bench.figure("admin: journal `/admin/`", getter(admin, "/admin/"), bench.sql(JOURNAL_SQL))
    bench.figure("admin: members `/admin/adherents`", getter(admin, "/admin/adherents"),
                 bench.sql(MEMBERS_SQL))
    year_start = (last_day.replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    _, month_after = month_bounds(last_day)
    bench.figure(f"admin: `/admin/rapports` 12 months ({year_start:%Y-%m}…{last_day:%Y-%m})",
                 getter(admin, f"/admin/rapports?du={year_start:%Y-%m}&au={last_day:%Y-%m}"),
                 bench.sql(REPORT_SQL, (paris_instant(year_start), paris_instant(month_after))),
                 heavy=True)
    bench.figure(f"admin: `/admin/rapports` all time ({first_day:%Y-%m}…{last_day:%Y-%m})",
                 getter(admin, f"/admin/rapports?du={first_day:%Y-%m}&au={last_day:%Y-%m}"),
                 bench.sql(REPORT_SQL, (paris_instant(first_day.replace(day=1)),
                                        paris_instant(month_after))),
                 heavy=True)
    bench.figure("admin: audit `/admin/audit`", getter(admin, "/admin/audit"),
                 bench.sql(AUDIT_SQL))

    say("  -- CCAS and desk")
    ccas = clients["bench-ccas"]
    programme = info["programme_id"]
    bench.figure("CCAS: home `/ccas/`", getter(ccas, "/ccas/"), bench.sql(PROGRAMMES_SQL))
    bench.figure("CCAS: funder's report", getter(ccas, f"/ccas/programmes/{programme}/rapport"),
                 bench.sql(PROGRAMME_SQL, (programme,)))
    bench.figure("desk: home `/comptoir/`", getter(clients["bench-guichet"], "/comptoir/"),
                 bench.sql(SUPPLY_SQL))

    say("  -- FEC over HTTP")
    month_first, month_next = month_bounds(last_day.replace(day=1) - dt.timedelta(days=1))
    for label, start, stop in (("one month", month_first, month_next),
                               ("a year", month_next - dt.timedelta(days=365), month_next)):
        fec_url = (f"/admin/comptabilite/fec?du={start.isoformat()}"
                   f"&au={(stop - dt.timedelta(days=1)).isoformat()}")
        fig = Figure(f"FEC export, {label} ({start} … {stop - dt.timedelta(days=1)})")
        bench.figures.append(fig)
        if bench.skipped(fig.what):
            fig.status = "skipped (--skip)"
            continue
        deadline = time.perf_counter() + args.budget
        for _ in range(args.heavy_repeat):
            if fig.samples and time.perf_counter() > deadline:
                break
            rss_before = vm_kib("VmRSS")
            peak_ok = reset_peak_rss()
            t0 = time.perf_counter()
            response = admin.get(fec_url, buffered=False)
            if response.status_code != 200:
                fig.status = f"GET {fec_url} → {response.status_code}"
                break
            size, first_byte = 0, None
            for chunk in response.response:
                if first_byte is None:
                    first_byte = time.perf_counter() - t0
                size += len(chunk)
            response.close()
            fig.samples.append(time.perf_counter() - t0)
            fig.extra.setdefault("first_byte_s", []).append(round(first_byte or 0, 3))
            fig.extra["bytes"] = size
            if peak_ok:
                fig.extra.setdefault("peak_rss_growth_mib", []).append(
                    round(max(vm_kib("VmHWM") - rss_before, 0) / 1024, 1))
        copy_sql = FEC_SQL.format(paris_instant(start), paris_instant(stop))

        def fec_baseline(copy_sql=copy_sql):
            with raw.cursor() as cur, cur.copy(copy_sql) as copy:
                return sum(len(block) for block in copy)
        fig.baseline = bench._times(fec_baseline, args.heavy_repeat)
        say(f"  {fig.what}: p50 {ms(fig.p50)} p95 {ms(fig.p95)}, first byte "
            f"{fig.extra.get('first_byte_s')}, {fig.extra.get('bytes', 0):,} bytes, RSS growth "
            f"{fig.extra.get('peak_rss_growth_mib')} MiB; baseline p95 {ms(fig.base_p95)}"
            + ("" if fig.status == "ok" else f" [{fig.status}]"))

    say("  -- verify")
    import inspect

    from bousol.ledger.books import verify as verify_module
    from bousol.ledger.kernel.db import make_engine
    engine = make_engine(url)
    params = inspect.signature(verify_module.verify).parameters
    variants: list[tuple[str, dict]] = [("verify", {})]
    if "full" in params:
        variants = [("verify (incremental)", {}), ("verify (full=True)", {"full": True})]
    for label, kwargs in variants:
        outcome: dict[str, Any] = {}

        def run_verify(kwargs=kwargs, outcome=outcome):
            with engine.connect() as conn:
                report = verify_module.verify(conn, **kwargs)
                conn.rollback()
            outcome["ok"] = report.ok
            outcome["lines"] = report.lines()
        fig = bench.figure(label, run_verify, bench.sql(VERIFY_SQL), heavy=True, warm=False,
                           repeat=args.verify_repeat)
        fig.extra["ok"] = outcome.get("ok")
        if not outcome.get("ok", True):
            fig.status = "verify FAILED"
        for line in outcome.get("lines", []):
            say(f"    {line}")
    engine.dispose()
    return bench


def table(bench: Bench) -> str:
    out = ["| what | n | p50 | p95 | baseline p95 | ratio |", "|---|---|---|---|---|---|"]
    for fig in bench.figures:
        ratio = f"{fig.ratio:,.1f}×" if fig.ratio is not None else "—"
        what = fig.what
        if fig.extra.get("first_byte_s"):
            what += (f" — first byte {ms(max(fig.extra['first_byte_s']))}, "
                     f"{fig.extra.get('bytes', 0) / 1e6:,.1f} MB")
            if fig.extra.get("peak_rss_growth_mib"):
                what += f", peak RSS +{max(fig.extra['peak_rss_growth_mib'])} MiB"
        if fig.status != "ok":
            status = " ".join(fig.status.split()).replace("|", "/")  # one table cell
            what += f" **{status[:160]}**"
        out.append(f"| {what} | {len(fig.samples)} | {ms(fig.p50)} | {ms(fig.p95)} | "
                   f"{ms(fig.base_p95)} | {ratio} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--solistes", type=int, default=160_000)
    parser.add_argument("--prestataires", type=int, default=6_000)
    parser.add_argument("--days", type=int, default=730, help="days the entries span")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each light figure")
    parser.add_argument("--heavy-repeat", type=int, default=3,
                        help="runs of the reports, FEC and verify")
    parser.add_argument("--verify-repeat", type=int, default=1)
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds at most per figure (at least one run)")
    parser.add_argument("--pg-url", default=os.environ.get("BOUSOL_SCALE_PG_URL",
                                                           DEFAULT_PG_URL),
                        help="the PostgreSQL server (its database part is ignored)")
    parser.add_argument("--db", default=DEFAULT_DB,
                        help="the database the bench drops, creates and fills")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database a --keep run left, without rebuilding")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--rebuild-mib", type=int, default=8192,
                        help="memory limit of each maintained figures' rebuild (a child "
                             "process); 0: in this process, no limit")
    parser.add_argument("--clock", help="the ledger's now (BOUSOL_CLOCK syntax); default: "
                                        "the real time, or the build's when reusing")
    parser.add_argument("--json", help="write the raw numbers to this file")
    parser.add_argument("--skip", action="append", default=[], metavar="TEXT",
                        help="leave out the figures whose name contains TEXT (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="measure only the figures whose name contains TEXT")
    parser.add_argument("--seal", action="store_true",
                        help="with --reuse: seal the closed months first (as `flask bousol "
                             "verify --seal` does), if the build did not")
    args = parser.parse_args(argv)

    shape = scale_build.Shape(entries=args.entries, solistes=args.solistes,
                              prestataires=args.prestataires, days=args.days, seed=args.seed)
    info = database_info(args.pg_url, args.db) if args.reuse else None
    if args.clock:
        clock.set_clock(args.clock)
    if args.reuse and not info:
        raise SystemExit(f"--reuse: no built database {args.db} (run once with --keep)")
    if info:
        say(f"== Reusing {args.db}: {info['loaded']['entries']:,} entries, built in "
            f"{info['build_seconds']} s")
        if not args.clock:  # the pages' "today" is the build's, whenever this runs
            built_end = dt.datetime.fromisoformat(info["shape"]["end"])
            clock.set_clock(built_end.isoformat())
        t0 = time.perf_counter()
        migrate(sqlalchemy_url(args.pg_url, args.db))  # the schema of today's code
        say(f"  migrations applied ({time.perf_counter() - t0:.1f} s)")
        if args.seal:
            info["sealed"] = seal_reused(args)
    else:
        info = build(args, shape)
    bench = None
    try:
        if not args.build_only:
            bench = measure(args, info)
            say(f"\n== {info['loaded']['entries']:,} entries "
                f"({info['loaded']['postings']:,} postings), built in "
                f"{info['build_seconds']:.0f} s\n")
            say(table(bench))
            if args.json:
                Path(args.json).write_text(json.dumps({
                    "info": info,
                    "figures": [{"what": f.what, "samples_s": f.samples,
                                 "baseline_s": f.baseline, "status": f.status,
                                 "p50_s": f.p50, "p95_s": f.p95, "baseline_p95_s": f.base_p95,
                                 "ratio": f.ratio, **f.extra} for f in bench.figures],
                }, indent=2, default=str))
                say(f"\n(raw numbers in {args.json})")
    finally:
        if bench is not None:
            bench.raw.close()
        if not (args.keep or args.reuse or args.build_only):
            drop_database(args.pg_url, args.db)
            say(f"(database {args.db} dropped; --keep keeps it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
