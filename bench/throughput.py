"""Payments through gunicorn against pgbench, on the same PostgreSQL server (issue 18).

What one run does:

1. Creates the database ``bousol_throughput`` on the server of ``--server`` (dropping
   only that database, with ``WITH (FORCE)``), migrates it with the real migrations,
   creates ``--solistes`` solistes (each with an API token, through
   ``api_tokens.issue``) and ``--prestataires`` prestataires, and funds the solistes
   (a subsidy, then one exchange each).
2. Starts gunicorn (``--workers`` sync workers, 127.0.0.1:``--port``, production
   config, in its own session via ``setsid``; killed by its pid at the end).
3. Drives ``--clients`` concurrent clients (threads, one raw HTTP/1.1 request per
   connection: gunicorn's sync workers close the connection after each response) that
   POST ``/api/v1/payments`` with a fresh ``Idempotency-Key`` each, for ``--duration``
   seconds after a warm-up, twice: **uniform** (payers and payees spread; each client
   owns its own payers) and **hot** (every payer pays one merchant).
   Per case: payments/s, worker CPU per payment (``utime+stime`` of the gunicorn
   workers from ``/proc/<pid>/stat``, after − before, / payments), PostgreSQL CPU per
   payment (the backends connected to ``bousol_throughput``), the client's own CPU, and
   latency p50/p95.
4. Runs ``pgbench -i`` in the database ``bousol_pgbench`` (dropped and recreated), then
   ``pgbench -c <clients> -j 2 -T <duration>`` (TPC-B-like), with the backends' CPU
   measured the same way (a poller keeps the last value seen for each backend, since
   pgbench's exit ends them).
5. Prints the table and the ratios payments/pgbench and hot/uniform. Nothing asserted.

``--profile N`` instead runs N payments in-process with Flask's test client on the same
kind of database, prints the worker-side CPU per payment (``time.process_time``) without
and then with cProfile, and the top of the profile.

    python bench/throughput.py [--clients 8] [--duration 20] [--workers 4]
    python bench/throughput.py --profile 2000

The machine has 2 cores shared by everything: the Python clients, gunicorn, PostgreSQL
and pgbench all take CPU from the same two, so the client CPU is printed beside the rest.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `config` (imported by create_app) lives at the root

import psycopg  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE = "bousol_throughput"
PGBENCH_DATABASE = "bousol_pgbench"
PORT = 8101
AMOUNT = "1.25"
AMOUNT_CENTS = 125
PASSWORD = "bench-throughput-password"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- databases


def conninfo(server: str, dbname: str) -> str:
    u = make_url(server)
    params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
              "dbname": dbname}
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})


def recreate_database(server: str, name: str) -> str:
    """Drop (only) ``name`` and create it empty; return its SQLAlchemy URL."""
    with psycopg.connect(conninfo(server, make_url(server).database or "postgres"),
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def app_environment(url: str) -> dict[str, str]:
    """The production config on the bench database (what gunicorn would run)."""
    env = {k: v for k, v in os.environ.items() if k != "BOUSOL_CLOCK"}
    env.update(BOUSOL_ENV="production", SECRET_KEY="bench-throughput-" + "x" * 40,
               BOUSOL_PUBLIC_URL="https://bousol.invalid", DATABASE_URL=url)
    return env


@dataclass
class Population:
    payers: list[tuple[str, str]]  # (token, party code)
    payees: list[str]


def set_up(url: str, n_solistes: int, n_prestataires: int, budget: int) -> Population:
    """Migrate, create the parties and tokens, fund the solistes for ``budget`` payments."""
    os.environ.update(app_environment(url))
    import flask_migrate

    from bousol.app import create_app
    from bousol.extensions import db
    from bousol.ledger.access import api_tokens, parties
    from bousol.ledger.access.parties import create_user
    from bousol.ledger.books import operations
    from bousol.ledger.desk import exchange as desk_exchange
    from bousol.ledger.kernel import settings
    from bousol.ledger.kernel.actors import SYSTEM
    from bousol.ledger.kernel.db import make_engine, make_session_factory
    from bousol.ledger.kernel.uow import UnitOfWork

    app = create_app("production")
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    engine = make_engine(url)
    factory = make_session_factory(engine)

    def uow(read_only: bool = False) -> UnitOfWork:
        return UnitOfWork(factory, read_only=read_only)

    # The set-up's passwords are checked once each (token issue); the payments never
    # hash a password. A cheap method keeps the set-up short.
    parties.PASSWORD_METHOD = "pbkdf2:sha256:1000"
    solistes = [create_user(uow(), SYSTEM, username=f"tp-soliste-{i:04d}", password=PASSWORD,
                            role="soliste") for i in range(n_solistes)]
    prestataires = [create_user(uow(), SYSTEM, username=f"tp-prestataire-{i:03d}",
                                password=PASSWORD, role="prestataire",
                                filiere="alimentation") for i in range(n_prestataires)]
    with uow() as unit:  # the funding exchanges are above the two-person thresholds
        for key in ("exchange.approval_above_cents", "exchange.approval_daily_above_cents"):
            settings.change(unit.conn, key, "100000000", user_id=None, reason="bench")
        unit.commit()
    euros = math.ceil(math.ceil(budget / n_solistes) * AMOUNT_CENTS / 100) + 10
    operations.record_subsidy(uow(), SYSTEM, euros=math.ceil(n_solistes * euros * 0.06) + 10,
                              memo="bench")
    for s in solistes:
        desk_exchange.exchange(uow(), SYSTEM, party_code=s.party_code, euros=euros,
                               memo="bench")
    payers = []
    for i, s in enumerate(solistes):
        issued = api_tokens.issue(uow, username=s.username, password=PASSWORD,
                                  address=f"10.{i // 250}.{i % 250}.1", label="bench")
        payers.append((issued.token, s.party_code))
    engine.dispose()
    return Population(payers, [p.party_code for p in prestataires])


# ---------------------------------------------------------------- CPU from /proc


def proc_cpu(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None: it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2:].split()[1]) == ppid:
                found.append(int(entry))
    return found


def backends_of(dbname: str) -> list[int]:
    """The PostgreSQL backends connected to ``dbname`` (by their process title)."""
    marker = f" {dbname} ".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if cmdline.startswith(b"postgres: ") and marker in cmdline:
                found.append(int(entry))
    return found


class CpuMeter:
    """CPU used by a changing set of processes between ``start()`` and ``stop()``: a
    poller keeps the last value seen for each pid, so a process that exits meanwhile
    (pgbench's backends) still counts, up to the last poll (0.2 s)."""

    def __init__(self, find, *, poll: bool = True) -> None:
        self.find = find
        self.poll = poll  # False: the set is found once (gunicorn's workers, its pool)
        self.base: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        for pid in self.find():
            cpu = proc_cpu(pid)
            if cpu is not None:
                self.last[pid] = cpu

    def start(self) -> None:
        self._poll()
        self.base = dict(self.last)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self.poll and not self._stop.wait(0.2):
            self._poll()

    def stop(self) -> float:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        for pid in list(self.last):  # a final reading of those still alive
            cpu = proc_cpu(pid)
            if cpu is not None:
                self.last[pid] = cpu
        if self.poll:
            self._poll()
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.last.items())


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


# ---------------------------------------------------------------- the HTTP clients


@dataclass
class ClientStats:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def payment_request(port: int, token: str, payee: str, key: str) -> bytes:
    body = json.dumps({"payee": payee, "amount": AMOUNT}).encode()
    head = (f"POST /api/v1/payments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: {key}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def post(port: int, data: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response[9:12]) if response.startswith(b"HTTP/1.") else 0
    return status, response


def client_loop(port: int, client: int, case: str, payers: list[tuple[str, str]],
                payees: list[str], stop: threading.Event, stats: ClientStats) -> None:
    k = 0
    while not stop.is_set():
        token, _code = payers[k % len(payers)]
        payee = payees[(k + client) % len(payees)]
        data = payment_request(port, token, payee, f"tp-{case}-{client}-{k}")
        started = time.perf_counter()
        try:
            status, response = post(port, data)
        except OSError as error:
            status, response = 0, str(error).encode()
        stats.latencies.append(time.perf_counter() - started)
        if status == 201:
            stats.ok += 1
        else:
            stats.failed += 1
            if len(stats.errors) < 3:
                stats.errors.append(f"{status} {response[-300:]!r}")
        k += 1


@dataclass
class CaseResult:
    name: str
    rate: float
    worker_ms: float
    pg_ms: float
    client_ms: float
    machine_busy: float  # share of the 2 cores used
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def run_case(name: str, port: int, master_pid: int, population: Population, clients: int,
             duration: float, warmup: float, payees: list[str]) -> CaseResult:
    stop = threading.Event()
    stats = [ClientStats() for _ in range(clients)]
    threads = [threading.Thread(
        target=client_loop,
        args=(port, i, name, population.payers[i::clients], payees, stop, stats[i]),
        daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    # Both sets stay put during a case: the workers, and the connections of their pools.
    workers = CpuMeter(lambda: children_of(master_pid), poll=False)
    backends = CpuMeter(lambda: backends_of(DATABASE), poll=False)
    ok0 = sum(s.ok for s in stats)
    n0 = [len(s.latencies) for s in stats]
    workers.start()
    backends.start()
    busy0, total0 = machine_busy()
    me0 = time.process_time()
    t0 = time.perf_counter()
    time.sleep(duration)
    elapsed = time.perf_counter() - t0
    ok1 = sum(s.ok for s in stats)
    me1 = time.process_time()
    busy1, total1 = machine_busy()
    worker_cpu, pg_cpu = workers.stop(), backends.stop()
    stop.set()
    for t in threads:
        t.join()
    paid = ok1 - ok0
    latencies = sorted(x for s, n in zip(stats, n0, strict=True) for x in s.latencies[n:])
    per = 1000 / max(paid, 1)
    return CaseResult(
        name, paid / elapsed, worker_cpu * per, pg_cpu * per, (me1 - me0) * per,
        (busy1 - busy0) / max(total1 - total0, 1e-9) * 2,
        p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
        p95_ms=latencies[int(len(latencies) * 0.95)] * 1000 if latencies else 0.0,
        failed=sum(s.failed for s in stats), errors=[e for s in stats for e in s.errors][:3])


# ---------------------------------------------------------------- gunicorn, pgbench


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found (Debian: util-linux for setsid, "
                         "postgresql-client for pgbench)")
    return found


def start_gunicorn(url: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
        [tool("setsid"), str(gunicorn), "--workers", str(workers), "--worker-class", "sync",
         "--bind", f"127.0.0.1:{port}", "--error-logfile", str(log), "wsgi:app"],
        cwd=ROOT, env=app_environment(url), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}); see {log}")
        try:
            status, _ = post(port, b"GET /api/v1/openapi.json HTTP/1.1\r\n"
                                   b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
            if status == 200 and len(children_of(process.pid)) >= workers:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(process)
    raise RuntimeError(f"gunicorn did not answer on port {port}; see {log}")


def stop_gunicorn(process: subprocess.Popen) -> None:
    # setsid execs gunicorn in place: the Popen's pid is the master's, and it leads
    # its own process group; end that group (the master and its workers) only.
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class PgbenchResult:
    tps: float
    pg_ms: float
    client_ms: float
    machine_busy: float


def run_pgbench(server: str, clients: int, duration: int) -> PgbenchResult:
    recreate_database(server, PGBENCH_DATABASE)
    u = make_url(server)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    subprocess.run([tool("pgbench"), "-i", "-q", *args, PGBENCH_DATABASE],  # noqa: S603
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backends = CpuMeter(lambda: backends_of(PGBENCH_DATABASE))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    backends.start()
    busy0, total0 = machine_busy()
    out = subprocess.run(  # noqa: S603
        [tool("pgbench"), "-c", str(clients), "-j", "2", "-T", str(duration), *args,
         PGBENCH_DATABASE], check=True, env=env, capture_output=True, text=True).stdout
    busy1, total1 = machine_busy()
    pg_cpu = backends.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    txns = int(re.search(r"number of transactions actually processed: (\d+)",
                         out).group(1))  # type: ignore[union-attr]
    client = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return PgbenchResult(tps, pg_cpu * 1000 / txns, client * 1000 / txns,
                         (busy1 - busy0) / max(total1 - total0, 1e-9) * 2)


# ---------------------------------------------------------------- in-process profile


def profile(url: str, population: Population, n: int, top: int, out: str | None) -> None:
    os.environ.update(app_environment(url))
    from bousol.app import create_app

    app = create_app("production")
    client = app.test_client()

    def pay(k: int, tag: str) -> None:
        token, _code = population.payers[k % len(population.payers)]
        payee = population.payees[k % len(population.payees)]
        response = client.post("/api/v1/payments", json={"payee": payee, "amount": AMOUNT},
                               headers={"Authorization": f"Bearer {token}",
                                        "Idempotency-Key": f"pr-{tag}-{k}"})
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code} {response.get_data(as_text=True)}")

    for k in range(100):
        pay(k, "warm")
    start, wall = time.process_time(), time.perf_counter()
    for k in range(n):
        pay(k, "plain")
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    print(f"\nin-process, {n} payments (Flask test client, no profiler): "
          f"{cpu * 1000 / n:.2f} ms of CPU per payment, {n / wall:.0f} payments/s")
    profiler = cProfile.Profile(time.process_time)  # CPU, not waiting on the database
    profiler.enable()
    for k in range(n):
        pay(k, "profiled")
    profiler.disable()
    if out:
        profiler.dump_stats(out)  # python -m pstats OUT: callers, callees
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(top)
        print(f"\n-- cProfile, by {order} (with the profiler's own overhead)")
        print("\n".join(line for line in text.getvalue().splitlines()
                        if line.strip() and "Ordered by" not in line)[:12000])


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BOUSOL_BENCH_PG_URL",
                                                           DEFAULT_SERVER),
                        help="a PostgreSQL URL on the server (its database is only used "
                             "to create and drop the bench's own)")
    parser.add_argument("--solistes", type=int, default=200)
    parser.add_argument("--prestataires", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--duration", type=int, default=20, help="seconds per case")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--profile", type=int, metavar="N", default=0,
                        help="profile N payments in-process instead of the HTTP run")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--profile-out", metavar="FILE", help="also write the cProfile stats")
    parser.add_argument("--no-pgbench", action="store_true")
    args = parser.parse_args()

    budget = max(args.profile * 2 + 200, 1500 * (args.duration + args.warmup) * 2)
    print(f"== database {DATABASE}: migrating, {args.solistes} solistes with tokens, "
          f"{args.prestataires} prestataires…", flush=True)
    url = recreate_database(args.server, DATABASE)
    population = set_up(url, args.solistes, args.prestataires, int(budget))
    if args.profile:
        profile(url, population, args.profile, args.top, args.profile_out)
        return

    log = Path(tempfile.gettempdir()) / f"bench-throughput-gunicorn-{args.port}.log"
    print(f"== gunicorn: {args.workers} sync workers on 127.0.0.1:{args.port} (log {log})",
          flush=True)
    server = start_gunicorn(url, args.port, args.workers, log)
    results: list[CaseResult] = []
    try:
        for name, payees in (("uniform", population.payees), ("hot", population.payees[:1])):
            print(f"== {name}: {args.clients} clients, {args.duration} s…", flush=True)
            results.append(run_case(name, args.port, server.pid, population, args.clients,
                                    args.duration, args.warmup, payees))
    finally:
        stop_gunicorn(server)
    bench = None
    if not args.no_pgbench:
        print(f"== pgbench: -c {args.clients} -j 2 -T {args.duration} (TPC-B-like)…",
              flush=True)
        bench = run_pgbench(args.server, args.clients, args.duration)

    print(f"\n{'case':<10} {'per s':>8} {'worker ms':>10} {'pg ms':>7} {'client ms':>10} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'cores':>6} {'failed':>7}")
    for r in results:
        print(f"{r.name:<10} {r.rate:8.1f} {r.worker_ms:10.2f} {r.pg_ms:7.2f} "
              f"{r.client_ms:10.2f} {r.p50_ms:7.1f} {r.p95_ms:7.1f} {r.machine_busy:6.2f} "
              f"{r.failed:7d}")
        for error in r.errors:
            print(f"    {error}")
    if bench is not None:
        print(f"{'pgbench':<10} {bench.tps:8.1f} {'':>10} {bench.pg_ms:7.2f} "
              f"{bench.client_ms:10.2f} {'':>7} {'':>7} {bench.machine_busy:6.2f}")
    uniform, hot = results
    print(f"\nhot/uniform: {hot.rate / uniform.rate:.2f} (goal >= 0.8)")
    if bench is not None:
        print(f"payments/pgbench: uniform {uniform.rate / bench.tps:.2f}, "
              f"hot {hot.rate / bench.tps:.2f} (goal >= 0.5)")
    print("worker CPU per payment goal: <= 3 ms; 'cores': the machine's busy share of "
          "its 2 cores during the case (everything, other users included)")


if __name__ == "__main__":
    main()
