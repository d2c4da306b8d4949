"""The state machines, each walked as a table: every allowed pair gives its target, every
other pair (unknown statuses and actions included) is refused with the domain's error.
The tables are written out here, as the docs draw them."""

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from bousol.ledger.association import decisions
from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import closing, exchange_approvals, iban_changes, payouts
from bousol.ledger.desk import reconversion_requests as rr
from bousol.ledger.kernel.errors import (
    AlreadyPaid,
    ApprovalTransition,
    ExchangeApprovalTransition,
    IbanChangeTransition,
    MotionClosed,
    PayoutBatchTransition,
    ReconversionRequestTransition,
    RequestClosed,
    RequestExpired,
    VoucherCancelled,
    VoucherExpired,
    VoucherRedeemed,
)
from bousol.ledger.kernel.states import StateMachine
from bousol.ledger.merchants import approval, payment_requests


@dataclass(frozen=True)
class Machine:
    name: str
    module: Any
    step: Any  # the domain's own function: (state, action) → the next state, or None
    table: dict  # {(from, action): to}, as strings
    states: tuple  # every status, and more
    actions: tuple
    refusal: Any  # the error class, or (state, action) → the error class

    def error(self, state, action):
        return self.refusal if isinstance(self.refusal, type) else self.refusal(state, action)


def _payment_request_refusal(state, _action):
    return {"paid": AlreadyPaid, "expired": RequestExpired}.get(state, RequestClosed)


MACHINES = [
    Machine("motion", decisions, decisions.check_transition,
            {("open", "adopt"): "adopted", ("open", "reject"): "rejected",
             ("open", "withdraw"): "withdrawn"},
            ("open", "adopted", "rejected", "withdrawn", "bogus"),
            ("adopt", "reject", "withdraw", "delete"), MotionClosed),
    Machine("approval", approval, approval.check_transition,
            {("draft", "submit"): "submitted", ("submitted", "approve"): "approved",
             ("submitted", "refuse"): "refused", ("approved", "suspend"): "suspended",
             ("suspended", "reinstate"): "approved", ("refused", "amend"): "draft"},
            ("draft", "submitted", "approved", "refused", "suspended", "active", "bogus"),
            ("submit", "approve", "refuse", "suspend", "reinstate", "amend", "delete"),
            ApprovalTransition),
    Machine("voucher", vouchers, vouchers.next_status,
            {("open", "redeem_part"): "open", ("open", "redeem_all"): "redeemed",
             ("open", "expire"): "expired", ("open", "cancel"): "cancelled"},
            ("open", "redeemed", "expired", "cancelled", "bogus"),
            ("redeem_part", "redeem_all", "expire", "cancel", "delete"),
            lambda state, _action: {"expired": VoucherExpired,
                                    "cancelled": VoucherCancelled}.get(state, VoucherRedeemed)),
    Machine("payment request", payment_requests, payment_requests.next_status,
            {("open", "pay"): "paid", ("open", "decline"): "declined",
             ("open", "cancel"): "cancelled"},
            ("open", "paid", "declined", "cancelled", "expired", "bogus"),
            ("pay", "decline", "cancel", "delete"), _payment_request_refusal),
    Machine("desk day", closing, closing.next_state,
            {("open", "close"): "closed", ("closed", "reopen"): "open"},
            ("open", "closed", "bogus"), ("close", "reopen", "delete"),
            lambda _state, action: (closing.DayClosed if action == "close"
                                    else closing.ClosingNotReopenable)),
    # The machines whose action is the status they reach (``check_transition`` answers
    # None): every target is an enum member, as their callers give it.
    Machine("IBAN change", iban_changes, iban_changes.check_transition,
            {("requested", "confirmed"): "confirmed", ("requested", "cancelled"): "cancelled"},
            ("requested", "confirmed", "cancelled", "bogus"),
            tuple(iban_changes.ChangeStatus), IbanChangeTransition),
    Machine("payout batch", payouts, payouts.check_transition,
            {("prepared", "released"): "released", ("released", "paid"): "paid",
             ("prepared", "cancelled"): "cancelled", ("released", "cancelled"): "cancelled"},
            ("prepared", "released", "paid", "cancelled", payouts.STORED_OPEN, "bogus"),
            tuple(payouts.BatchStatus), PayoutBatchTransition),
    Machine("reconversion request", rr, rr.check_transition,
            {("requested", "executed"): "executed", ("requested", "cancelled"): "cancelled",
             ("requested", "refused"): "refused"},
            ("requested", "executed", "cancelled", "refused", "bogus"),
            tuple(rr.Status), ReconversionRequestTransition),
    Machine("exchange approval", exchange_approvals, exchange_approvals.check_transition,
            {("pending", "approved"): "approved", ("pending", "refused"): "refused",
             ("pending", "cancelled"): "cancelled"},
            ("pending", "approved", "refused", "cancelled", "paid"),
            tuple(exchange_approvals.Status), ExchangeApprovalTransition),
]
MOVES = {"IBAN change", "payout batch", "reconversion request", "exchange approval"}


def _pairs():
    for machine in MACHINES:
        for state, action in itertools.product(machine.states, machine.actions):
            yield pytest.param(machine, state, action, id=f"{machine.name}:{state}:{action}")


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_the_code_table_is_the_docs_table(machine):
    table = machine.module.MACHINE.table
    assert {(str(s), str(a)): str(t) for (s, a), t in table.items()} == machine.table
    named = {source for (source, _action) in machine.table} | set(machine.table.values())
    assert sorted(map(str, machine.module.MACHINE.states())) == sorted(named)


@pytest.mark.parametrize(("machine", "state", "action"), list(_pairs()))
def test_every_pair(machine, state, action):
    expected = machine.table.get((state, str(action)))
    if expected is not None:
        assert machine.module.MACHINE.next(state, action) == expected
        answer = machine.step(state, action)
        assert answer == (None if machine.name in MOVES else expected)
        assert action in machine.module.MACHINE.allowed(state)
    else:
        error = machine.error(state, str(action))
        with pytest.raises(error) as refused:
            machine.step(state, action)
        assert type(refused.value) is error  # the domain's own class, not a parent
        assert action not in machine.module.MACHINE.allowed(state)


# ---------------------------------------------------------------- the helper itself


class Nope(Exception):
    pass


LIGHT = StateMachine({("off", "push"): "on", ("on", "push"): "off", ("on", "cut"): "dead"},
                     lambda state, action: Nope(f"{state}/{action}"))


def test_next_and_its_refusal():
    assert LIGHT.next("off", "push") == "on"
    with pytest.raises(Nope, match=r"^dead/push$") as refused:
        LIGHT.next("dead", "push")
    assert refused.value.__suppress_context__


def test_what_the_table_tells():
    assert LIGHT.allowed("on") == ["push", "cut"]
    assert LIGHT.allowed("dead") == []
    assert LIGHT.states() == ["off", "on", "dead"]
    assert LIGHT.actions() == ["push", "cut"]
    assert LIGHT.rows() == [("off", "push", "on"), ("on", "push", "off"), ("on", "cut", "dead")]
    assert LIGHT.describe() == "off --push--> on\non --push--> off\non --cut--> dead"
    assert LIGHT.can("on", "cut") and not LIGHT.can("off", "cut")


def test_unhashable_values_are_refused_not_crashed():
    assert not LIGHT.can(["on"], "push")
    with pytest.raises(Nope):
        LIGHT.next("on", {"push": 1})


def test_the_table_is_read_only_and_a_copy():
    source = {("a", "go"): "b"}
    machine = StateMachine(source, lambda s, a: Nope())
    source[("b", "go")] = "c"
    assert machine.rows() == [("a", "go", "b")]
    with pytest.raises(TypeError):
        machine.table[("b", "go")] = "c"


def test_moves_name_the_action_by_its_target():
    machine = StateMachine.moves({("a", "b"), ("b", "c")}, lambda s, a: Nope())
    assert machine.next("a", "b") == "b"
    assert dict(machine.table) == {("a", "b"): "b", ("b", "c"): "c"}
    with pytest.raises(Nope):
        machine.next("a", "c")


def test_an_enum_member_and_its_stored_string_are_one_state():
    assert decisions.MACHINE.next("open", "adopt") is decisions.Status.ADOPTED
    assert decisions.MACHINE.next(decisions.Status.OPEN, decisions.Action.ADOPT) \
        is decisions.Status.ADOPTED
    assert decisions.MACHINE.describe().splitlines()[0] == "open --adopt--> adopted"
