"""The report figures kept with the entries (issue 18): the activity report read from
them equals the report computed from the journal (tests/association/reference_reports.py)
on the history of test_reports.py and on random ledgers; ``verify`` proves the tables
equal the journal and names the keys that differ; ``rebuild`` puts them back."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bousol.ledger.association import report_figures, reports
from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel.clock import PARIS, paris_today
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.merchants import refunds
from tests.association.reference_reports import journal_activity_report
from tests.association.test_reports import DEC, MAR, at, history, utc  # noqa: F401

TODAY = paris_today()


def both(ledger, first=DEC, last=MAR):
    with ledger.uow(read_only=True) as uow:
        return (reports.activity_report(uow.conn, first, last, today=TODAY),
                journal_activity_report(uow.conn, first, last, today=TODAY))


def figures_check(ledger, *period):
    with ledger.uow(read_only=True) as uow:
        if uow.conn.dialect.name == "postgresql":  # its set-based recomputation too
            assert report_figures.compute(uow.conn, *period) == report_figures.compute(
                uow.conn, *period, in_python=True)
        return report_figures.check(uow.conn, *period)


def test_the_history_reads_the_same_from_the_figures(ledger, history):  # noqa: F811
    from_figures, from_journal = both(ledger)
    assert from_figures == from_journal
    assert from_figures.months[1].purchases.count == 2  # not a report of zeros
    found = figures_check(ledger)
    assert found.ok, found.problems
    assert found.name == "les agrégats des rapports égalent le journal"


def test_verify_has_the_line(ledger, history):  # noqa: F811
    lines = {c.name: c for c in ledger.verify().checks}
    assert lines["les agrégats des rapports égalent le journal"].ok


def test_a_payment_writes_the_figures_in_its_transaction(ledger, history):  # noqa: F811
    marie, baker = history["marie"], history["baker"]
    before = ledger.count("report_month_parties")
    ledger.pay(marie, baker, "1.00")  # today: a month of its own
    with ledger.uow(read_only=True) as uow:
        month = TODAY.replace(day=1)
        figures = reports.activity_report(uow.conn, month, month, today=TODAY).months[0]
    assert figures.purchases == reports.Tally(1, 100)
    assert (figures.active_solistes, figures.active_prestataires) == (1, 1)
    assert ledger.count("report_month_parties") == before + 2


def test_a_reversal_takes_the_payment_off_its_own_month(ledger, history, monkeypatch):  # noqa: F811
    marie, baker = history["marie"], history["baker"]
    at(monkeypatch, utc(2025, 3, 10, 9))
    paid = ledger.pay(marie, baker, "3.00").entry_id
    (march,) = both(ledger, MAR, MAR)[0].months
    assert march.purchases.count == 1 and march.active_solistes == 1
    at(monkeypatch, utc(2025, 4, 2, 9))  # in April
    ledger.reverse(paid)
    monkeypatch.undo()
    from_figures, from_journal = both(ledger, MAR, MAR)
    assert from_figures == from_journal
    (march,) = from_figures.months
    assert march.purchases == reports.Tally(0, 0)
    assert (march.active_solistes, march.active_prestataires) == (0, 0)
    assert figures_check(ledger).ok


def test_verify_names_the_keys_that_differ_and_rebuild_mends_them(ledger, history):  # noqa: F811
    baker = history["baker"]
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE report_month_parties SET purchases_cents = purchases_cents + 1 "
            "WHERE party_id = (SELECT id FROM parties WHERE code = :code) "
            "AND month = :m"), {"code": baker.party_code, "m": dt.date(2025, 1, 1)})
        conn.execute(sa.text("DELETE FROM report_day_flows WHERE day = :d"),
                     {"d": dt.date(2025, 3, 5)})
    found = figures_check(ledger)
    assert not found.ok
    assert any("parties" in p and "2025-01-01" in p for p in found.problems), found.problems
    assert any("flows" in p and "2025-03-05" in p for p in found.problems), found.problems
    assert not ledger.verify().ok
    # A period sees only its own months.
    assert figures_check(ledger, dt.date(2025, 2, 1), dt.date(2025, 2, 28)).ok
    assert not figures_check(ledger, dt.date(2025, 1, 10), dt.date(2025, 1, 10)).ok
    with ledger.uow() as uow:
        report_figures.rebuild(uow.conn, dt.date(2025, 1, 1), dt.date(2025, 1, 31))
        uow.commit()
    assert figures_check(ledger, dt.date(2025, 1, 1), dt.date(2025, 1, 31)).ok
    assert not figures_check(ledger).ok  # March still wrong
    with ledger.uow() as uow:
        report_figures.rebuild(uow.conn)
        uow.commit()
    assert figures_check(ledger).ok
    from_figures, from_journal = both(ledger)
    assert from_figures == from_journal


def test_the_database_refuses_negative_figures(ledger, history):  # noqa: F811
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE report_month_parties SET purchases_count = -1"))
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE report_months SET active_solistes = -1"))


# ---------------------------------------------------------------- random ledgers

# Instants over four Paris months, with the edges where Paris and UTC disagree on the
# day or the month (23:30 UTC on the last day of a month is the next month in Boulogne).
_DAYS = [dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2025, 1, 15),
         dt.date(2025, 1, 31), dt.date(2025, 2, 1), dt.date(2025, 2, 28),
         dt.date(2025, 3, 1), dt.date(2025, 3, 30), dt.date(2025, 3, 31)]
instants = st.builds(
    lambda day, hour, minute: dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC),
    st.sampled_from(_DAYS), st.sampled_from([0, 9, 22, 23]), st.sampled_from([0, 30]))
amounts = st.integers(min_value=1, max_value=3_000).map(lambda c: f"{c // 100}.{c % 100:02d}")


def make_machine(ledger, monkeypatch):
    ledger.phase("b2b", True)
    ledger.phase("ccas", True)
    ledger.setting("exchange.approval_above_cents", "100000000")
    ledger.setting("exchange.approval_daily_above_cents", "100000000")
    ledger.setting("refunds.max_days", "365")
    solistes = [ledger.soliste() for _ in range(3)]
    shops = [ledger.prestataire(f) for f in ("alimentation", "mobilite-douce",
                                             "alimentation")]
    with ledger.engine.begin() as conn:
        for shop, commune in zip(shops, ("Wimereux", " ", "Le Portel"), strict=True):
            conn.execute(sa.text("UPDATE parties SET commune = :c WHERE code = :code"),
                         {"c": commune, "code": shop.party_code})
    ccas = ledger.user("ccas", name="CCAS")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide", budget="100000", starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=300), filieres=None, default_validity_days=300)
    ledger.subsidy("5000.00")
    for member in solistes:
        ledger.exchange(member, "300.00")
    ledger.exchange(ccas, "500.00", programme_id=programme.id)
    ledger.exchange(ccas, "300.00")

    class FiguresMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.payments: list[tuple[int, object]] = []  # (entry id, payee actor)

        def when(self, instant):
            at(monkeypatch, instant)

        @rule(instant=instants, payer=st.integers(0, 2), shop=st.integers(0, 2),
              amount=amounts)
        def purchase(self, instant, payer, shop, amount):
            self.when(instant)
            try:
                done = ledger.pay(solistes[payer], shops[shop], amount)
            except DomainError:
                return
            self.payments.append((done.entry_id, shops[shop]))

        @rule(instant=instants, payer=st.integers(0, 2), shop=st.integers(0, 2),
              amount=amounts)
        def b2b(self, instant, payer, shop, amount):
            if payer == shop:
                return
            self.when(instant)
            try:
                done = ledger.pay(shops[payer], shops[shop], amount)
            except DomainError:
                return
            self.payments.append((done.entry_id, shops[shop]))

        @rule(instant=instants, who=st.integers(0, 3), amount=amounts)
        def ccas_pays(self, instant, who, amount):
            self.when(instant)
            target = solistes[who] if who < 3 else shops[0]
            try:
                ledger.pay(ccas, target, amount)
            except DomainError:
                pass

        @rule(instant=instants, pick=st.integers(0, 1000))
        def reverse(self, instant, pick):
            if not self.payments:
                return
            entry_id, _shop = self.payments[pick % len(self.payments)]
            self.when(instant)
            try:
                ledger.reverse(entry_id)
            except DomainError:
                pass

        @rule(instant=instants, pick=st.integers(0, 1000), amount=amounts)
        def refund(self, instant, pick, amount):
            if not self.payments:
                return
            entry_id, shop = self.payments[pick % len(self.payments)]
            self.when(instant)
            try:
                refunds.refund(ledger.uow(), shop, payment_entry_id=entry_id, amount=amount)
            except DomainError:
                pass

        @rule(instant=instants, earmarked=st.booleans(), who=st.integers(0, 2),
              shop=st.integers(0, 2), amount=amounts)
        def voucher(self, instant, earmarked, who, shop, amount):
            self.when(instant)
            try:
                granted = vouchers.grant(
                    ledger.uow(), ccas, beneficiary_ref="B", amount="30.00",
                    programme_id=programme.id,
                    soliste_code=solistes[who].party_code if earmarked else None)
                if earmarked:
                    vouchers.pay_with_earmarked(ledger.uow(), solistes[who],
                                                voucher_id=granted.id,
                                                payee_code=shops[shop].party_code,
                                                amount=amount)
                else:
                    vouchers.redeem(ledger.uow(), shops[shop], code=granted.code,
                                    amount=amount)
            except DomainError:
                pass

        @rule(shop=st.integers(0, 2), commune=st.sampled_from(["Wimereux", None, "Outreau"]))
        def move_shop(self, shop, commune):
            """Filière and commune are the prestataire's today: a move changes the past."""
            with ledger.engine.begin() as conn:
                conn.execute(sa.text("UPDATE parties SET commune = :c WHERE code = :code"),
                             {"c": commune, "code": shops[shop].party_code})

        @invariant()
        def the_report_reads_the_same(self):
            monkeypatch.undo()
            from_figures, from_journal = both(ledger)
            assert from_figures == from_journal
            found = figures_check(ledger)
            assert found.ok, found.problems

    return FiguresMachine


def test_random_ledgers_give_the_same_report(ledger, backend, monkeypatch):
    machine = make_machine(ledger, monkeypatch)
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=12 if backend == "sqlite" else 5,
                          stateful_step_count=15, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )


def test_paris_days_and_channels():
    assert report_figures.paris_day(dt.datetime(2025, 1, 31, 23, 30, tzinfo=dt.UTC)) == \
        dt.date(2025, 2, 1)
    assert report_figures.paris_day(dt.datetime(2025, 7, 31, 21, 59, tzinfo=dt.UTC)) == \
        dt.date(2025, 7, 31)
    assert report_figures.paris_day(dt.datetime(2025, 7, 31, 22, 0, tzinfo=PARIS)) == \
        dt.date(2025, 7, 31)
    assert report_figures.channel_of({"tender": "cash", "rate": "1:1.05"}) == "cash"
    assert report_figures.channel_of({"payment_request": 4}) == "request"
    assert report_figures.channel_of({"tender": "nonsense"}) == ""
    assert report_figures.channel_of(None) == ""
    assert report_figures.month_bounds(dt.date(2025, 1, 10), dt.date(2025, 2, 3)) == (
        dt.date(2025, 1, 1), dt.date(2025, 3, 1))


def test_an_incremental_verify_checks_the_new_months_and_those_drawn(ledger, history):  # noqa: F811
    from bousol.ledger.books import hooks

    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE report_months SET active_solistes = 7 WHERE month = :m"),
                     {"m": dt.date(2025, 1, 1)})
        last_id = conn.execute(sa.text("SELECT max(id) FROM entries")).scalar_one()
        march_id = conn.execute(sa.text(
            "SELECT min(id) FROM entries WHERE created_at >= :t"),
            {"t": utc(2025, 3, 1)}).scalar_one()

    def run(**scope):
        with ledger.uow(read_only=True) as uow:
            return report_figures._invariant(uow.conn, hooks.VerifyScope(full=False, **scope))

    assert run(after_entry_id=last_id).ok  # nothing new, nothing drawn
    assert run(after_entry_id=march_id - 1).ok  # March only
    found = run(after_entry_id=last_id, months=(dt.date(2025, 1, 1),))
    assert not found.ok and "2025-01-01" in found.problems[0]
    with ledger.uow(read_only=True) as uow:
        assert not report_figures._invariant(
            uow.conn, hooks.VerifyScope(full=True, after_entry_id=0)).ok
