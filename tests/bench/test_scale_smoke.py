"""The scale benchmark's generator (bench/scale_build.py) writes a ledger that verify
accepts: a very small one, loaded by COPY into the test schema, proves it stays so."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from bench import scale_build
from bousol.ledger.books.verify import verify
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.db import make_engine

pytestmark = pytest.mark.postgres


def _conninfo(url: str) -> str:
    u = sa.make_url(url)
    params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
              "dbname": u.database, "options": u.query.get("options")}
    return psycopg.conninfo.make_conninfo("", **{k: str(v) for k, v in params.items() if v})


def test_a_small_generated_ledger_passes_verify(pg_template):
    if pg_template is None:
        pytest.skip("PostgreSQL not reachable (BOUSOL_TEST_PG_URL)")
    pg_template.reset()
    shape = scale_build.Shape(entries=2_000, solistes=60, prestataires=12, days=40,
                              reversal_rate=0.05, reconversion_rate=0.03)
    loaded = scale_build.load(_conninfo(pg_template.url), shape, end=clock.now(),
                              say=lambda _text: None)
    engine = make_engine(pg_template.url)
    try:
        assert scale_build.audit_load(engine, loaded, shape) == 1
        outcomes = scale_build.rebuild_maintained(engine)
        assert not [name for name, outcome in outcomes.items()
                    if str(outcome).startswith("FAILED")], outcomes
        with engine.connect() as conn:
            report = verify(conn)
            kinds = dict(conn.execute(sa.text(
                "SELECT kind, count(*) FROM entries GROUP BY kind")).all())
            big = conn.execute(sa.text(
                "SELECT count(DISTINCT p.entry_id) FROM postings p "
                "JOIN accounts a ON a.id = p.account_id JOIN parties pa ON pa.id = a.party_id "
                "WHERE pa.code = 'P-000001'")).scalar_one()
    finally:
        engine.dispose()
    assert report.ok, "\n".join(report.lines())
    assert sum(kinds.values()) == loaded.entries >= shape.entries
    assert {"payment", "exchange", "reconversion", "reversal", "cash_deposit"} <= set(kinds)
    # The big merchant holds a tenth of the entries, as the supermarket of the bench.
    assert abs(big - loaded.entries // 10) <= 5
