"""Reconversion requests: the prestataire asks, cancels; the bank refuses or executes —
the money moves once, even when two clerks execute at once or after a crash."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bousol.ledger.books import operations
from bousol.ledger.desk import reconversion_requests as rr
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import (
    Forbidden,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    NotFound,
    ReconversionRequestTransition,
    ReserveInsufficient,
)
from bousol.ledger.models import Role
from tests.helpers import BANK, THREADS, hammer

Status = rr.Status


@pytest.fixture
def shop(ledger):
    """A baker holding 50,00 B (paid by Marie)."""
    ledger.subsidy("100.00")
    marie = ledger.soliste(name="Marie Lefebvre")
    baker = ledger.prestataire(name="Boulangerie du Port")
    ledger.exchange(marie, "100.00")
    ledger.pay(marie, baker, "50.00")
    return baker


def clerk(ledger) -> Actor:
    return ledger.user("bank")


def row(ledger, request_id: int) -> rr.RequestRow:
    with ledger.uow(read_only=True) as uow:
        return rr.get(uow.conn, request_id)


def count_reconversions(ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM entries WHERE kind = 'reconversion'")).scalar_one()


# ---------------------------------------------------------------- the transitions table

ALL = list(Status)
ALLOWED = {(Status.REQUESTED, Status.EXECUTED), (Status.REQUESTED, Status.CANCELLED),
           (Status.REQUESTED, Status.REFUSED)}


def test_the_transitions_table_is_exactly_this():
    assert rr.TRANSITIONS == ALLOWED


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", ALL)
def test_check_transition(current, target):
    if (current, target) in ALLOWED:
        rr.check_transition(current.value, target)
    else:
        with pytest.raises(ReconversionRequestTransition) as refused:
            rr.check_transition(current.value, target)
        assert refused.value.code == "reconversion_request_transition"
        assert refused.value.http_status == 409


def _to(ledger, shop, status: Status) -> int:
    """A request brought to ``status`` through the service."""
    made = rr.request(ledger.uow(), shop, "10.00")
    if status == Status.EXECUTED:
        rr.execute(ledger.uow(), BANK, made.request_id)
    elif status == Status.CANCELLED:
        rr.cancel(ledger.uow(), shop, made.request_id)
    elif status == Status.REFUSED:
        rr.refuse(ledger.uow(), BANK, made.request_id, "IBAN manquant")
    return made.request_id


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("target", [Status.EXECUTED, Status.CANCELLED, Status.REFUSED])
def test_each_action_from_each_state(ledger, shop, current, target):
    request_id = _to(ledger, shop, current)
    actions = {
        Status.EXECUTED: lambda: rr.execute(ledger.uow(), BANK, request_id),
        Status.CANCELLED: lambda: rr.cancel(ledger.uow(), shop, request_id),
        Status.REFUSED: lambda: rr.refuse(ledger.uow(), BANK, request_id, "Non"),
    }
    if (current, target) in ALLOWED:
        actions[target]()
        assert row(ledger, request_id).status == target
    else:
        with pytest.raises(ReconversionRequestTransition):
            actions[target]()
        assert row(ledger, request_id).status == current
    ledger.assert_consistent()


# ---------------------------------------------------------------- asking


def test_request_and_execute(ledger, shop):
    made = rr.request(ledger.uow(), shop, "20,00", memo="Fin de mois")
    assert made.bousol_cents == 2000 and made.balance_cents == 5000
    found = row(ledger, made.request_id)
    assert (found.status, found.party_code, found.memo) == ("requested", shop.party_code,
                                                            "Fin de mois")
    assert ledger.balance(shop) == 5000  # nothing moves before the bank executes
    done = rr.execute(ledger.uow(), BANK, made.request_id)
    assert (done.bousol_cents, done.fee_cents, done.euro_cents) == (2000, 100, 1900)
    assert ledger.balance(shop) == 3000 and ledger.balance(shop, "EUR") == 1900
    found = row(ledger, made.request_id)
    assert found.status == "executed" and found.entry_id == done.entry_id
    assert found.closed_at is not None
    with ledger.engine.connect() as conn:
        memo = conn.execute(sa.text("SELECT memo FROM entries WHERE id = :i"),
                            {"i": done.entry_id}).scalar_one()
    assert memo == f"Demande de reconversion n° {made.request_id} — Fin de mois"
    ledger.assert_consistent()


def test_request_refusals(ledger, shop):
    with pytest.raises(InsufficientFunds):
        rr.request(ledger.uow(), shop, "50.01")
    with pytest.raises(InvalidAmount):
        rr.request(ledger.uow(), shop, "-3")
    with pytest.raises(InvalidInput):
        rr.request(ledger.uow(), shop, "1", memo="x" * 201)
    with pytest.raises(Forbidden):
        rr.request(ledger.uow(), ledger.soliste(), "1")
    with pytest.raises(Forbidden):
        rr.request(ledger.uow(), BANK, "1")
    assert ledger.count("reconversion_requests") == 0


def test_only_the_owner_cancels_and_only_the_bank_refuses_or_executes(ledger, shop):
    made = rr.request(ledger.uow(), shop, "5.00")
    other = ledger.prestataire()
    with pytest.raises(NotFound):
        rr.cancel(ledger.uow(), other, made.request_id)
    with pytest.raises(Forbidden):
        rr.execute(ledger.uow(), shop, made.request_id)
    with pytest.raises(Forbidden):
        rr.refuse(ledger.uow(), shop, made.request_id, "non")
    with pytest.raises(InvalidInput) as no_reason:
        rr.refuse(ledger.uow(), BANK, made.request_id, "   ")
    assert no_reason.value.details["field"] == "reason"
    with pytest.raises(NotFound):
        rr.execute(ledger.uow(), BANK, 424242)
    rr.refuse(ledger.uow(), BANK, made.request_id, "Agrément suspendu")
    found = row(ledger, made.request_id)
    assert (found.status, found.reason) == ("refused", "Agrément suspendu")


# ---------------------------------------------------------------- execution


def test_balance_checked_again_at_execution(ledger, shop):
    made = rr.request(ledger.uow(), shop, "40.00")
    ledger.reconvert(shop, "30.00")  # at the desk meanwhile: 20,00 B left
    with pytest.raises(InsufficientFunds):
        rr.execute(ledger.uow(), BANK, made.request_id)
    found = row(ledger, made.request_id)
    assert found.status == "requested" and found.entry_id is None
    rr.cancel(ledger.uow(), shop, made.request_id)  # still waiting: it can be cancelled
    assert row(ledger, made.request_id).status == "cancelled"


def test_reserve_insufficient_leaves_it_requested_then_a_retry_succeeds(ledger):
    ledger.subsidy("1.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    # Paid in cash: the 20 € wait in the desk's drawer; the reserve holds the 1 € bonus.
    ledger.exchange(marie, "20.00", tender="cash")
    ledger.pay(marie, baker, "21.00")
    made = rr.request(ledger.uow(), baker, "21.00")
    with pytest.raises(ReserveInsufficient) as refused:
        rr.execute(ledger.uow(), BANK, made.request_id)
    assert refused.value.code == "reserve_insufficient"
    found = row(ledger, made.request_id)
    assert found.status == "requested" and found.entry_id is None
    assert count_reconversions(ledger) == 0 and ledger.balance(baker) == 2100
    operations.bank_desk_cash(ledger.uow(), BANK, euros="20.00")  # the cash is banked
    done = rr.execute(ledger.uow(), BANK, made.request_id)
    assert row(ledger, made.request_id).entry_id == done.entry_id
    assert count_reconversions(ledger) == 1 and ledger.balance(baker) == 0
    ledger.assert_consistent()


def test_a_crash_before_the_commit_leaves_nothing_half_done(ledger, shop, monkeypatch):
    """The reconversion and the "executed" mark commit together: a crash between them
    (here: right after the reconversion is written) leaves neither."""
    made = rr.request(ledger.uow(), shop, "10.00")
    real = operations.reconvert_within

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the server died here")

    monkeypatch.setattr(rr.operations, "reconvert_within", crash)
    with pytest.raises(RuntimeError):
        rr.execute(ledger.uow(), BANK, made.request_id)
    assert count_reconversions(ledger) == 0 and ledger.balance(shop) == 5000
    assert row(ledger, made.request_id).status == "requested"

    monkeypatch.setattr(rr.operations, "reconvert_within", real)
    other_clerk = clerk(ledger)
    done = rr.execute(ledger.uow(), other_clerk, made.request_id)
    assert count_reconversions(ledger) == 1 and ledger.balance(shop) == 4000
    assert ledger.balance(shop, "EUR") == 950
    found = row(ledger, made.request_id)
    assert found.status == "executed" and found.entry_id == done.entry_id
    assert found.closed_by == other_clerk.username
    with ledger.engine.connect() as conn:  # the clerk is on the entry too
        actor = conn.execute(sa.text("SELECT actor_user_id FROM entries WHERE id = :i"),
                             {"i": done.entry_id}).scalar_one()
    assert actor == other_clerk.user_id
    ledger.assert_consistent()


def test_two_clerks_executing_at_once_reconvert_once(ledger, shop):
    made = rr.request(ledger.uow(), shop, "30.00")
    clerks = [clerk(ledger) for _ in range(THREADS)]

    def worker(i: int):
        try:
            return rr.execute(ledger.uow(), clerks[i], made.request_id).entry_id
        except ReconversionRequestTransition:
            return "already"

    outcomes = hammer(worker)
    entries = {o for o in outcomes if o != "already"}
    assert len(entries) == 1  # every success names the same entry
    assert count_reconversions(ledger) == 1
    assert ledger.balance(shop) == 2000 and ledger.balance(shop, "EUR") == 2850
    found = row(ledger, made.request_id)
    assert found.status == "executed" and found.entry_id in entries
    ledger.assert_consistent()


def test_cancel_and_execute_at_once_never_leave_money_moved_for_a_cancelled_request(
        ledger, shop):
    for _ in range(4):
        made = rr.request(ledger.uow(), shop, "1.00")

        def worker(i: int, request_id=made.request_id):
            try:
                if i % 2:
                    rr.cancel(ledger.uow(), shop, request_id)
                    return "cancelled"
                rr.execute(ledger.uow(), BANK, request_id)
                return "executed"
            except ReconversionRequestTransition:
                return "refused"

        hammer(worker, threads=4)
        found = row(ledger, made.request_id)
        assert found.status in ("executed", "cancelled")
        assert (found.entry_id is not None) == (found.status == "executed")
    with ledger.engine.connect() as conn:
        executed = conn.execute(sa.text(
            "SELECT count(*) FROM reconversion_requests WHERE status = 'executed'"
        )).scalar_one()
    assert count_reconversions(ledger) == executed
    ledger.assert_consistent()


def test_lists(ledger, shop):
    first = _to(ledger, shop, Status.REQUESTED)
    second = _to(ledger, shop, Status.REFUSED)
    with ledger.uow(read_only=True) as uow:
        assert [r.id for r in rr.pending(uow.conn)] == [first]
        assert [r.id for r in rr.recently_closed(uow.conn)] == [second]
        mine = rr.for_party(uow.conn, row(ledger, first).party_id)
    assert [r.id for r in mine] == [second, first]
    assert mine[1].balance_cents == 5000


def test_actor_with_party_id_only_is_accepted(ledger, shop):
    with ledger.engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                           {"c": shop.party_code}).scalar_one()
    actor = Actor(shop.user_id, Role.PRESTATAIRE, party_id=pid)
    made = rr.request(ledger.uow(), actor, "1.00")
    assert row(ledger, made.request_id).party_code == shop.party_code
