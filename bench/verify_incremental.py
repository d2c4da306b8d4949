"""``verify`` incremental (sealed months) against ``--full`` on a generated ledger (issue 18).

    .venv/bin/python bench/verify_incremental.py --entries 200000

Builds a PostgreSQL database with bench/scale_build.py's generator (COPY into the real
tables), adds one chained audit record per entry (what the app writes: one record per
transaction), seals every month but the last closed one (so the tail is a month and a
few days: the worst night, just before that month is sealed), then times
``verify(conn)`` (incremental, ``--sample``) and ``verify(conn, full=True)``, and
prints each check's line. The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import json
import os
import sys
import time
from pathlib import Path

_here = Path(__file__).resolve().parent
for _path in (str(_here), str(_here.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import psycopg  # noqa: E402
import scale  # noqa: E402
import scale_build  # noqa: E402

from bousol.ledger import domains  # noqa: E402
from bousol.ledger.books import seals  # noqa: E402
from bousol.ledger.books.verify import verify  # noqa: E402
from bousol.ledger.kernel import clock  # noqa: E402
from bousol.ledger.kernel.audit import _canonical  # noqa: E402
from bousol.ledger.kernel.db import make_engine  # noqa: E402


def add_audit_records(conninfo: str, n: int, start: dt.datetime, end: dt.datetime) -> None:
    """Append ``n`` chained records (one per entry, as the app would have written)."""
    with psycopg.connect(conninfo) as conn:
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        step = (end - start) / max(n, 1)
        details = json.dumps({"changes": [{"table": "entries", "op": "insert", "rows": 1}]},
                             separators=(",", ":"))
        with conn.cursor().copy("COPY audit_records (seq, at, user_id, username, address, "
                                "action, details, prev_hash, hash) FROM STDIN") as copy:
            for i in range(n):
                seq += 1
                at = start + step * i
                digest = hashlib.sha256(_canonical(seq, at, None, "bench", "bench",
                                                   "POST /payer", details, prev)).hexdigest()
                copy.write_row((seq, at, None, "bench", "bench", "POST /payer", details, prev,
                                digest))
                prev = digest
        conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (seq, prev))
        conn.commit()


def timed(label: str, engine, **options):
    with engine.connect() as conn:
        started = time.perf_counter()
        report = verify(conn, **options)
        seconds = time.perf_counter() - started
        conn.rollback()
    print(f"\n== {label}: {seconds:.1f} s, {'OK' if report.ok else 'FAILED'}")
    for line in report.lines():
        print(f"   {line}")
    return seconds


def breakdown(engine, sample: int) -> None:
    """What the incremental run spends where: each domain invariant (scoped or full),
    the seals' chain, the rechecked months, the audit chain's tail."""
    from bousol.ledger.books import hooks
    from bousol.ledger.kernel import audit

    with engine.connect() as conn:
        parts: list[tuple[str, float]] = []
        sealed = seals.load(conn)
        drawn = list(zip(sealed, [None, *sealed], strict=False))[-sample:]
        scope = hooks.VerifyScope(full=False, after_entry_id=sealed[-1].last_entry_id,
                                  ranges=tuple((s.after_entry_id, s.last_entry_id)
                                               for s, _ in drawn),
                                  months=tuple(s.month for s, _ in drawn))
        for invariant in hooks.invariants():
            t0 = time.perf_counter()
            check = invariant(conn, scope) if hooks.is_scoped(invariant) else invariant(conn)
            name = check.name
            parts.append((f"invariant « {name} »", time.perf_counter() - t0))
        t0 = time.perf_counter()
        seals.check_chain(conn, seals.load(conn))
        parts.append((f"chaîne des {len(sealed)} sceaux", time.perf_counter() - t0))
        for seal, previous in drawn:
            t0 = time.perf_counter()
            seals.recheck(conn, seal, previous)
            parts.append((f"mois {seal.month:%Y-%m} revérifié ({seal.entries:,} écritures)",
                          time.perf_counter() - t0))
        t0 = time.perf_counter()
        chain = audit.verify_chain(conn, start=(sealed[-1].audit_seq, sealed[-1].audit_hash))
        parts.append((f"journal d'audit depuis le sceau ({chain.records:,})",
                      time.perf_counter() - t0))
        conn.rollback()
    for what, seconds in parts:
        print(f"   {seconds:7.2f} s  {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--solistes", type=int, default=20_000)
    parser.add_argument("--prestataires", type=int, default=800)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sample", type=int, default=2)
    parser.add_argument("--pg-url", default=os.environ.get("BOUSOL_SCALE_PG_URL",
                                                           scale.DEFAULT_PG_URL))
    parser.add_argument("--db", default="bousol_verify_bench")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    domains.load()
    shape = scale_build.Shape(entries=args.entries, solistes=args.solistes,
                              prestataires=args.prestataires, days=args.days)
    url = scale.sqlalchemy_url(args.pg_url, args.db)
    conninfo = scale.server_conninfo(args.pg_url, args.db)
    scale.recreate_database(args.pg_url, args.db)
    try:
        scale.migrate(url)
        end = clock.now()
        loaded = scale_build.load(conninfo, shape, end=end, say=lambda _: None)
        engine = make_engine(url)
        for module_name, function in scale_build.MAINTAINED:  # the figures, not the seals
            if module_name != seals.__name__:
                with engine.begin() as conn:
                    getattr(importlib.import_module(module_name), function)(conn)
        # Seal all but the last closed month: the tail is then that month and this one's days.
        with engine.connect() as conn:
            months = seals.months_to_seal(conn, end)
        seal_now = seals.month_end(months[-2]) + 2 * seals.SEAL_AFTER
        first = end - dt.timedelta(days=args.days)
        with psycopg.connect(conninfo) as conn:
            sealed_entries = conn.execute(
                "SELECT count(*) FROM entries WHERE created_at < %s",
                (seals.month_end(months[-2]),)).fetchone()[0]
        add_audit_records(conninfo, sealed_entries, first, seal_now - seals.SEAL_AFTER)
        started = time.perf_counter()
        with engine.begin() as conn:
            done = seals.seal_closed_months(conn, seal_now)
        seal_seconds = time.perf_counter() - started
        add_audit_records(conninfo, loaded.entries - sealed_entries, seal_now, end)
        scale_build.vacuum_analyze(conninfo)
        print(f"{loaded.entries:,} entries ({loaded.postings:,} postings) over {args.days} "
              f"days; {len(done)} months sealed in {seal_seconds:.1f} s "
              f"({done[0].month:%Y-%m} to {done[-1].month:%Y-%m}); "
              f"{loaded.entries - sealed_entries:,} entries in the tail")
        incremental = timed(f"verify (incremental, sample={args.sample})", engine,
                            sample=args.sample)
        print("\n== where the incremental run spends its time")
        breakdown(engine, args.sample)
        full = timed("verify (full=True)", engine, full=True)
        print(f"\n| {loaded.entries:,} entries | full {full:.1f} s | incremental "
              f"{incremental:.1f} s | ratio {full / incremental:.1f}× |")
        engine.dispose()
    finally:
        if not args.keep:
            scale.drop_database(args.pg_url, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
