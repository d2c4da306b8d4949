"""Seals of closed months and the incremental ``verify`` (issue 18).

The books get entries two months before the clock's month (a closed, sealable month
whatever the date of the run: 1 January at 00:30 included) and entries today (the tail).
A tampered sealed month is caught by ``full=True`` and, when drawn, by the default run.
"""

from __future__ import annotations

import datetime as dt
import random
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from bousol.ledger.books import seals
from bousol.ledger.books.verify import verify
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.clock import PARIS


def _months_back(n: int) -> dt.date:
    month = clock.paris_today().replace(day=1)
    for _ in range(n):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month


@contextmanager
def at(instant: dt.datetime):
    """The ledger's clock at ``instant`` for the block, then back where it was."""
    moved = instant - clock.now()
    clock.set_clock(instant)
    try:
        yield
    finally:
        clock.set_clock(clock.now() - moved)


SEALED = _months_back(2)


@pytest.fixture
def books(ledger):
    with at(dt.datetime.combine(SEALED.replace(day=15), dt.time(12), tzinfo=PARIS)):
        ledger.subsidy("50.00")
        marie, baker = ledger.soliste(), ledger.prestataire()
        ledger.exchange(marie, "100.00", tender="card")
        ledger.pay(marie, baker, "30.00")
        ledger.reverse(ledger.pay(marie, baker, "1.00").entry_id)
    # Today: the tail after the seals.
    ledger.subsidy("20.00")
    karim = ledger.soliste()
    ledger.exchange(karim, "10.00", tender="card")
    return ledger


def seal(ledger) -> list[seals.Sealed]:
    with ledger.uow() as uow:
        done = seals.seal_closed_months(uow.conn)
        uow.commit()
    return done


def run(ledger, **options):
    with ledger.uow(read_only=True) as uow:
        return verify(uow.conn, **options)


def failed(report) -> dict[str, list[str]]:
    return {c.name: c.problems for c in report.checks if not c.ok}


def tamper(ledger, backend, sql: str, **params) -> None:
    """An attacker with SQL access: around the append-only triggers."""
    with ledger.engine.begin() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for table in ("entries", "postings", "audit_records", "period_seals",
                          "period_seal_accounts"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_update")
        conn.execute(sa.text(sql), params)


def test_closed_months_are_sealed_once_in_order(books):
    done = seal(books)
    assert done[0].month == SEALED
    assert (done[0].seq, done[0].entries, done[0].postings) == (1, 5, 14)
    # The month before this one is sealed too (empty) unless it ended under an hour ago.
    assert [s.month for s in done[1:]] in ([], [_months_back(1)])
    assert all(s.entries == 0 for s in done[1:])
    assert seal(books) == []  # nothing new is closed
    with books.engine.connect() as conn:
        rows = seals.load(conn)
    assert rows[0].after_entry_id == 0 and rows[0].prev_hash == seals.GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert rows[0].audit_seq > 0


def test_default_run_checks_the_tail_and_a_sample(books):
    seal(books)
    report = run(books, sample=1, rng=random.Random(0))
    assert report.ok, report.lines()
    names = [c.name for c in report.checks]
    assert names[-2:] == ["sceaux des périodes", "journal d'audit chaîné"]
    assert "soldes recalculés" in names and "écritures équilibrées" in names
    assert report.scope.startswith("Vérification incrémentale")
    checks = {c.name: c for c in report.checks}
    assert "depuis le n°" in checks["journal d'audit chaîné"].detail
    assert "1 revérifié(s)" in checks["sceaux des périodes"].detail
    full = run(books, full=True)
    assert full.ok, full.lines()
    assert full.scope.startswith("Vérification complète")


def test_the_tail_is_checked_in_full(books, backend):
    seal(books)
    # Today's last posting, changed: the entry no longer balances, nor does the balance.
    tamper(books, backend, "UPDATE postings SET amount = amount + 1 WHERE id = "
                           "(SELECT max(id) FROM postings)")
    problems = failed(run(books, sample=0))
    assert "écritures équilibrées" in problems and "soldes recalculés" in problems


def _sealed_posting_ids(ledger) -> tuple[int, int]:
    """Two postings of one sealed entry in the same currency (the exchange's BSOL legs)."""
    with ledger.engine.connect() as conn:
        last = seals.load(conn)[0].last_entry_id
        rows = conn.execute(sa.text(
            "SELECT p.id FROM postings p JOIN entries e ON e.id = p.entry_id "
            "WHERE e.kind = 'exchange' AND e.id <= :last AND p.currency = 'BSOL' "
            "ORDER BY p.id"), {"last": last}).scalars().all()
    return rows[0], rows[1]


def test_a_tampered_sealed_month_is_caught_by_full_and_when_drawn(books, backend):
    seal(books)
    first, second = _sealed_posting_ids(books)
    # A cent moved between the legs of a sealed entry: it still balances, and the stored
    # balances are left as they were.
    tamper(books, backend, "UPDATE postings SET amount = amount + 1 WHERE id = :id", id=first)
    tamper(books, backend, "UPDATE postings SET amount = amount - 1 WHERE id = :id", id=second)
    # Not drawn: the default run trusts the seal (what sampling is for).
    assert not {"soldes recalculés", "sceaux des périodes"} & set(failed(run(books, sample=0)))
    # Drawn: the month is recomputed from the journal.
    drawn = failed(run(books, sample=99))
    assert "sceaux des périodes" in drawn and "soldes recalculés" not in drawn
    assert any("empreinte du journal recalculée ≠ scellée" in p
               for p in drawn["sceaux des périodes"])
    assert any(f"période {SEALED:%Y-%m} (sceau 1) : compte" in p
               for p in drawn["sceaux des périodes"])
    # Full: every balance from every posting, and every seal recomputed.
    full = failed(run(books, full=True))
    assert "soldes recalculés" in full and "sceaux des périodes" in full


def test_a_changed_memo_in_a_sealed_month_is_caught(books, backend):
    seal(books)
    tamper(books, backend, "UPDATE entries SET memo = 'autre chose' "
                           "WHERE id = (SELECT min(id) FROM entries)")
    assert run(books, sample=0).ok
    assert "sceaux des périodes" in failed(run(books, sample=99))
    assert list(failed(run(books, full=True))) == ["sceaux des périodes"]


def test_a_forged_seal_is_caught_every_night(books, backend):
    seal(books)
    # Money made out of nothing, and the sealed sums changed to hide it.
    tamper(books, backend, "UPDATE period_seal_accounts SET amount = amount + 100 WHERE "
                           "seal_seq = 1 AND account_id = (SELECT min(account_id) FROM "
                           "period_seal_accounts WHERE seal_seq = 1)")
    problems = failed(run(books, sample=0))
    assert {"soldes recalculés", "sceaux des périodes"} <= set(problems)
    assert "sceau 1 (" in problems["sceaux des périodes"][0]
    assert "sommes par compte modifiées" in problems["sceaux des périodes"][0]


def test_an_edited_seal_breaks_its_hash(books, backend):
    done = seal(books)
    tamper(books, backend, "UPDATE period_seals SET entries = entries + 1 WHERE seq = 1")
    problems = failed(run(books, sample=0))["sceaux des périodes"]
    assert "sceau 1 (" in problems[0] and "contenu modifié" in problems[0]
    assert len(done) >= 1


def test_an_audit_record_before_the_seal_is_checked_when_drawn(books, backend):
    seal(books)
    tamper(books, backend, "UPDATE audit_records SET username = 'quelqu_un' WHERE seq = 2")
    assert run(books, sample=0).ok  # sealed: the nightly run starts after it
    drawn = failed(run(books, sample=99))
    assert list(drawn) == ["sceaux des périodes"]
    assert any("journal d'audit : enregistrement 2 : contenu modifié" in p
               for p in drawn["sceaux des périodes"])
    assert "journal d'audit chaîné" in failed(run(books, full=True))


def test_the_sealed_audit_head_must_stay(books, backend):
    seal(books)
    with books.engine.connect() as conn:
        head = seals.load(conn)[-1].audit_seq
    tamper(books, backend, "UPDATE audit_records SET hash = :h WHERE seq = :s",
           h="f" * 64, s=head)
    problems = failed(run(books, sample=0))["journal d'audit chaîné"]
    assert f"enregistrement {head} : ne porte plus l'empreinte scellée" in problems


def test_seals_are_append_only(books):
    seal(books)
    for sql in ("UPDATE period_seals SET entries = 0", "DELETE FROM period_seals",
                "UPDATE period_seal_accounts SET amount = 0",
                "DELETE FROM period_seal_accounts"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), \
                books.engine.begin() as conn:
            conn.execute(sa.text(sql))


def test_no_entries_nothing_to_seal(ledger):
    assert seal(ledger) == []
    report = run(ledger)
    assert report.ok and report.scope.startswith("Vérification complète")


def test_empty_months_between_are_sealed(ledger):
    early = _months_back(4)
    with at(dt.datetime.combine(early.replace(day=3), dt.time(9), tzinfo=PARIS)):
        ledger.subsidy("10.00")
    with at(dt.datetime.combine(SEALED.replace(day=28), dt.time(23, 30), tzinfo=PARIS)):
        ledger.subsidy("5.00")
    done = seal(ledger)
    assert [s.month for s in done[:3]] == [early, _months_back(3), SEALED]
    assert [s.entries for s in done[:3]] == [1, 0, 1]
    report = run(ledger, sample=99)
    assert report.ok, report.lines()


def test_cli_verify_seal_full_and_sample(app, books):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bousol", "verify", "--seal"])
    assert result.exit_code == 0, result.output
    assert f"Mois {SEALED:%Y-%m} scellé (sceau 1) : 5 écritures, 14 mouvements." in result.output
    result = runner.invoke(args=["bousol", "verify", "--seal", "--sample", "0"])
    assert result.exit_code == 0, result.output
    assert "Vérification incrémentale" in result.output
    assert "Aucun mois clos à sceller." in result.output
    result = runner.invoke(args=["bousol", "verify", "--full"])
    assert result.exit_code == 0, result.output
    assert "Vérification complète" in result.output
    assert "[OK] sceaux des périodes" in result.output
    result = runner.invoke(args=["bousol", "verify", "--sample", "-1"])
    assert result.exit_code == 2


def test_cli_seals_nothing_when_the_check_fails(app, books):
    with books.engine.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET balance = 5 WHERE system_code = 'bonus_fund'"))
    result = app.test_cli_runner().invoke(args=["bousol", "verify", "--seal"])
    assert result.exit_code == 1
    assert "Rien n'a été scellé." in result.output
    assert books.count("period_seals") == 0


def test_a_scoped_invariant_gets_what_the_run_covers(books, monkeypatch):
    from bousol.ledger.books import hooks
    from bousol.ledger.books.verify import Check

    seen = []

    def counted(conn, scope):
        n = conn.execute(sa.select(sa.func.count()).where(
            scope.entry_condition(sa.column("id")))
            .select_from(sa.table("entries"))).scalar_one()
        seen.append((scope, n))
        return Check("essai", True, f"{n} écritures")

    monkeypatch.setattr(hooks, "_invariants", [*hooks._invariants])
    monkeypatch.setattr(hooks, "_scoped", [*hooks._scoped])
    hooks.invariant(counted, scoped=True)
    done = seal(books)
    assert run(books, sample=0).ok
    scope, n = seen[-1]
    assert not scope.full and scope.ranges == () and n == 2  # today's two entries
    assert run(books, sample=99).ok
    scope, n = seen[-1]
    assert scope.months[0] == SEALED and n == 2 + done[0].entries
    assert run(books, full=True).ok
    assert seen[-1][0].full and seen[-1][1] == 2 + done[0].entries
