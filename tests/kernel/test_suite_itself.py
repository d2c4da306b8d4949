"""The suite holds on any date and beside another run: its clock is the ledger's own,
and two runs on one PostgreSQL server use schemas of their own, dropped at the end."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bousol.ledger.desk import members
from bousol.ledger.kernel import clock
from tests import conftest

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the clock


def test_the_run_reads_the_set_clock_not_the_calendar():
    wanted = clock.parse_instant(os.environ.get("BOUSOL_CLOCK", "").strip()
                                 or conftest.DEFAULT_TEST_CLOCK)
    # The run started at that instant and has been running for less than a day since.
    assert wanted <= clock.now() < wanted + dt.timedelta(hours=12)
    assert clock.paris_today() == clock.now().astimezone(clock.PARIS).date()


def test_set_clock_starts_there_and_keeps_running():
    before = clock.now()
    try:
        clock.set_clock("2028-02-29")
        first = clock.now()
        assert first.astimezone(clock.PARIS) >= dt.datetime(2028, 2, 29, 12, tzinfo=clock.PARIS)
        assert clock.paris_today() == dt.date(2028, 2, 29)
        time.sleep(0.01)
        assert clock.now() > first  # time-to-live rules still elapse
        # The ledger's rules read it: a membership paid that day runs to 31/12/2028.
        assert members._year_end(clock.paris_today()) == dt.date(2028, 12, 31)
    finally:
        clock.set_clock(before)


@pytest.mark.parametrize(("text", "utc"), [
    ("2027-12-31", dt.datetime(2027, 12, 31, 11, 0, tzinfo=dt.UTC)),  # noon in Boulogne
    ("2028-01-01T00:30", dt.datetime(2027, 12, 31, 23, 30, tzinfo=dt.UTC)),
    ("2028-01-01T00:30:00+01:00", dt.datetime(2027, 12, 31, 23, 30, tzinfo=dt.UTC)),
    ("2026-07-14T08:00:00Z", dt.datetime(2026, 7, 14, 8, 0, tzinfo=dt.UTC)),
])
def test_clock_instants_are_read_in_paris_time_unless_told(text, utc):
    assert clock.parse_instant(text) == utc


@pytest.mark.parametrize("text", ["31/12/2027", "demain", "2027-13-01"])
def test_a_clock_that_is_not_a_date_is_refused(text):
    with pytest.raises(ValueError, match="BOUSOL_CLOCK"):
        clock.parse_instant(text)


def test_another_process_started_with_the_clock_reads_it():
    """What a command started by a test sees (the CLI, a server): BOUSOL_CLOCK."""
    env = {**os.environ, "BOUSOL_CLOCK": "2028-01-01T00:30"}
    out = subprocess.run(
        [sys.executable, "-c",
         "from bousol.ledger.kernel import clock; print(clock.paris_today())"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "2028-01-01"


# ------------------------------------------------------------------ two runs at once


def _test_schemas(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bousol_test%'")).scalars())


@pytest.mark.postgres
def test_a_second_run_beside_this_one_neither_collides_nor_leaves_its_schema(pg_template):
    if pg_template is None:
        pytest.skip(f"PostgreSQL not reachable at {conftest.PG_URL}")
    admin = sa.create_engine(conftest.PG_URL)
    try:
        assert conftest.PG_SCHEMA in _test_schemas(admin)
        env = {k: v for k, v in os.environ.items() if k != "BOUSOL_TEST_PG_SCHEMA"}
        env["BOUSOL_TEST_PG_URL"] = conftest.PG_URL
        other = subprocess.Popen(  # a whole second pytest run, on the same server
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/books/test_verify.py::test_clean_books_pass"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        theirs = f"bousol_test_{other.pid}_"
        seen: set[str] = set()
        try:
            deadline = time.monotonic() + 300
            while other.poll() is None and time.monotonic() < deadline:
                pg_template.reset()  # what every test of this run does, meanwhile
                seen |= {n for n in _test_schemas(admin) if n.startswith(theirs)}
                time.sleep(0.05)
            output, _ = other.communicate(timeout=60)
        finally:
            if other.poll() is None:
                other.kill()
        assert other.returncode == 0, output
        assert "2 passed" in output  # SQLite and PostgreSQL, there too
        assert len(seen) == 1  # the other run worked in a schema of its own…
        assert not {n for n in _test_schemas(admin) if n.startswith(theirs)}  # …and dropped it
        assert conftest.PG_SCHEMA in _test_schemas(admin)  # ours is still there, intact
        with pg_template.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM accounts")).scalar() > 0
    finally:
        admin.dispose()
