"""Payment requests (till and B2B invoices), refunds, and confirming with a PIN."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import sqlalchemy as sa

from bousol.ledger.access import confirm
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.errors import (
    AlreadyPaid,
    FlowNotAllowed,
    Forbidden,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    NotFound,
    NotRefundable,
    NotReversible,
    RefundExceedsPayment,
    RefundPeriodOver,
    RequestClosed,
    RequestExpired,
    RequestNotForYou,
    TooManyAttempts,
    UnknownParty,
    WrongSecret,
)
from bousol.ledger.merchants import payment_requests, refunds
from tests.helpers import PASSWORD, hammer

STATUSES = ("open", "paid", "declined", "cancelled", "expired")
ACTIONS = ("pay", "decline", "cancel")
ALLOWED = {("open", "pay"): "paid", ("open", "decline"): "declined",
           ("open", "cancel"): "cancelled"}
REFUSAL = {"paid": AlreadyPaid, "expired": RequestExpired, "declined": RequestClosed,
           "cancelled": RequestClosed}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_request_state_machine_table(status, action):
    if (status, action) in ALLOWED:
        assert payment_requests.next_status(status, action) == ALLOWED[(status, action)]
    else:
        with pytest.raises(REFUSAL[status]):
            payment_requests.next_status(status, action)


def test_an_open_request_past_its_expiry_is_expired():
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    later = now + dt.timedelta(minutes=1)
    assert payment_requests.effective_status("open", later, now) == "open"
    assert payment_requests.effective_status("open", now, now) == "expired"
    assert payment_requests.effective_status("paid", now - dt.timedelta(days=1), now) == "paid"


@pytest.fixture
def shop(ledger):
    ledger.subsidy("1000.00")
    baker = ledger.prestataire(name="Boulangerie")
    marie = ledger.soliste(name="Marie")
    ledger.exchange(marie, "40.00")  # 42,00 B
    return ledger, baker, marie


def request_row(ledger, request_id: int):
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM payment_requests WHERE id = :i"),
                            {"i": request_id}).mappings().one()


def test_till_request_is_paid_once_and_moves_the_money(shop):
    ledger, baker, marie = shop
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="12,50",
                                                reference="Ticket 41")
    assert view.status == "open" and view.amount_cents == 1250 and view.kind == "till"
    assert len(view.short_code) == 6 and set(view.short_code) <= set(
        payment_requests.SHORT_CODE_ALPHABET)
    assert len(view.token) >= 30
    before = ledger.count("entries")
    paid = payment_requests.pay(ledger.uow(), marie, token=view.token)
    assert not paid.replayed and paid.amount_cents == 1250
    assert paid.balance_cents == 4200 - 1250
    assert ledger.balance(marie) == 2950 and ledger.balance(baker) == 1250
    row = request_row(ledger, view.id)
    assert row["status"] == "paid" and row["paid_entry_id"] == paid.entry_id
    # A second tap by the same payer: the same payment back, nothing moves.
    again = payment_requests.pay(ledger.uow(), marie, token=view.token)
    assert again.replayed and again.entry_id == paid.entry_id
    assert ledger.balance(marie) == 2950 and ledger.count("entries") == before + 1
    # Anyone else: already paid.
    karim = ledger.soliste()
    ledger.exchange(karim, "20.00")
    with pytest.raises(AlreadyPaid):
        payment_requests.pay(ledger.uow(), karim, token=view.token)
    with ledger.engine.connect() as conn:
        memo, details = conn.execute(sa.text(
            "SELECT memo, details FROM entries WHERE id = :i"), {"i": paid.entry_id}).one()
    assert memo == "Ticket 41" and f'"payment_request": {view.id}' in details
    ledger.assert_consistent()


def test_request_found_by_short_code_typed_loosely(shop):
    ledger, baker, _marie = shop
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="3")
    typed = f" {view.short_code[:3].lower()}-{view.short_code[3:]} "
    with ledger.engine.connect() as conn:
        assert payment_requests.by_short_code(conn, typed).id == view.id
        assert payment_requests.by_short_code(conn, "ZZ") is None
        assert payment_requests.by_token(conn, "x" * 32) is None


def test_a_refused_payment_leaves_the_request_open_and_writes_nothing(shop):
    ledger, baker, _marie = shop
    poor = ledger.soliste()
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="12.50")
    entries = ledger.count("entries")
    with pytest.raises(InsufficientFunds):
        payment_requests.pay(ledger.uow(), poor, token=view.token)
    assert request_row(ledger, view.id)["status"] == "open"
    assert ledger.count("entries") == entries


def test_expired_and_cancelled_requests_cannot_be_paid(shop):
    ledger, baker, marie = shop
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="5")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE payment_requests SET expires_at = :t WHERE id = :i"),
                     {"t": clock.now() - dt.timedelta(seconds=1), "i": view.id})
    with pytest.raises(RequestExpired):
        payment_requests.pay(ledger.uow(), marie, token=view.token)
    with pytest.raises(RequestExpired):  # nor cancelled: expired has no exit
        payment_requests.cancel(ledger.uow(), baker, request_id=view.id)
    other = payment_requests.create_till_request(ledger.uow(), baker, amount="5")
    assert payment_requests.cancel(ledger.uow(), baker, request_id=other.id).status == "cancelled"
    with pytest.raises(RequestClosed):
        payment_requests.pay(ledger.uow(), marie, token=other.token)
    assert ledger.balance(marie) == 4200


def test_the_expiry_is_a_setting(shop):
    ledger, baker, _marie = shop
    ledger.setting("payment_requests.ttl_minutes", "3")
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="5")
    assert view.expires_at - view.created_at == dt.timedelta(minutes=3)


def test_who_may_ask_to_be_paid(shop, ledger):
    _ledger, baker, marie = shop
    with pytest.raises(Forbidden):
        payment_requests.create_till_request(ledger.uow(), marie, amount="5")
    with pytest.raises(InvalidAmount):
        payment_requests.create_till_request(ledger.uow(), baker, amount="-5")
    with pytest.raises(InvalidInput):
        payment_requests.create_till_request(ledger.uow(), baker, amount="5",
                                             reference="x" * 141)
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = 'suspended' WHERE code = :c"),
                     {"c": baker.party_code})
    with pytest.raises(FlowNotAllowed, match="pas agréé"):
        payment_requests.create_till_request(ledger.uow(), baker, amount="5")
    assert ledger.count("payment_requests") == 0


def test_another_merchant_cannot_cancel_or_see_my_request(shop):
    ledger, baker, _marie = shop
    rival = ledger.prestataire()
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="5")
    with pytest.raises(NotFound):
        payment_requests.cancel(ledger.uow(), rival, request_id=view.id)
    with ledger.engine.connect() as conn:
        baker_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                {"c": baker.party_code}).scalar()
        rival_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                {"c": rival.party_code}).scalar()
        assert payment_requests.for_payee(conn, baker_id, view.id) is not None
        assert payment_requests.for_payee(conn, rival_id, view.id) is None


def test_a_request_is_paid_once_whatever_the_concurrent_payers(shop):
    ledger, baker, marie = shop
    payers = [marie] + [ledger.soliste() for _ in range(3)]
    for payer in payers[1:]:
        ledger.exchange(payer, "20.00")
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="12.50")
    before = ledger.count("entries")

    def worker(i: int) -> str:
        try:  # two taps each from four phones
            result = payment_requests.pay(ledger.uow(), payers[i % 4], token=view.token)
            return "replayed" if result.replayed else "paid"
        except AlreadyPaid:
            return "already_paid"

    outcomes = Counter(hammer(worker))
    assert outcomes["paid"] == 1, outcomes
    assert outcomes["paid"] + outcomes["replayed"] + outcomes["already_paid"] == 8
    assert ledger.count("entries") == before + 1
    assert ledger.balance(baker) == 1250
    ledger.assert_consistent()


# ---------------------------------------------------------------- B2B


def test_b2b_invoice_request_before_and_after_the_switch(shop):
    ledger, supplier, _marie = shop
    customer = ledger.prestataire(name="Épicerie")
    ledger.pay(_marie, customer, "30.00")
    with pytest.raises(FlowNotAllowed, match="B2B"):
        payment_requests.create_invoice_request(
            ledger.uow(), supplier, customer_code=customer.party_code, amount="20",
            reference="F-2026-001")
    with pytest.raises(FlowNotAllowed, match="B2B"):  # the payment itself too
        ledger.pay(customer, supplier, "20.00", memo="F-2026-001")
    ledger.phase("b2b", True)
    with pytest.raises(InvalidInput, match="référence"):
        payment_requests.create_invoice_request(
            ledger.uow(), supplier, customer_code=customer.party_code, amount="20",
            reference="  ")
    with pytest.raises(UnknownParty):
        payment_requests.create_invoice_request(
            ledger.uow(), supplier, customer_code="P-999999", amount="20", reference="F1")
    with pytest.raises(FlowNotAllowed):  # a soliste is not a B2B customer
        payment_requests.create_invoice_request(
            ledger.uow(), supplier, customer_code=_marie.party_code, amount="20",
            reference="F1")
    view = payment_requests.create_invoice_request(
        ledger.uow(), supplier, customer_code=customer.party_code, amount="20",
        reference="F-2026-001")
    assert view.kind == "invoice" and view.payer_code == customer.party_code
    assert view.expires_at - view.created_at == dt.timedelta(days=30)
    with pytest.raises(RequestNotForYou):  # addressed to the customer only
        payment_requests.pay(ledger.uow(), _marie, token=view.token)
    paid = payment_requests.pay(ledger.uow(), customer, token=view.token)
    assert ledger.balance(customer) == 1000 and ledger.balance(supplier) == 2000
    with ledger.engine.connect() as conn:
        memo = conn.execute(sa.text("SELECT memo FROM entries WHERE id = :i"),
                            {"i": paid.entry_id}).scalar()
    assert memo == "F-2026-001"
    # Direct payment of a supplier, now that the phase is open.
    ledger.pay(customer, supplier, "10.00", memo="F-2026-002")
    assert ledger.balance(supplier) == 3000
    ledger.assert_consistent()


def test_the_customer_declines_an_invoice_request(shop):
    ledger, supplier, _marie = shop
    customer = ledger.prestataire()
    ledger.phase("b2b", True)
    view = payment_requests.create_invoice_request(
        ledger.uow(), supplier, customer_code=customer.party_code, amount="20",
        reference="F-7")
    with pytest.raises(RequestNotForYou):
        payment_requests.decline(ledger.uow(), supplier, token=view.token, reason="non")
    declined = payment_requests.decline(ledger.uow(), customer, token=view.token,
                                        reason="Déjà réglée en euros")
    assert declined.status == "declined" and declined.decline_reason == "Déjà réglée en euros"
    with pytest.raises(RequestClosed):
        payment_requests.pay(ledger.uow(), customer, token=view.token)
    with ledger.engine.connect() as conn:
        customer_id = conn.execute(sa.text("SELECT id FROM parties WHERE code = :c"),
                                   {"c": customer.party_code}).scalar()
        assert [r.id for r in payment_requests.addressed_to(conn, customer_id)] == [view.id]


# ---------------------------------------------------------------- refunds


def test_refunds_full_and_partial_never_more_than_paid(shop):
    ledger, baker, marie = shop
    paid = ledger.pay(marie, baker, "20.00")
    first = refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="5,50")
    assert (first.refunded_cents, first.remaining_cents) == (550, 1450)
    assert ledger.balance(marie) == 2200 + 550 and ledger.balance(baker) == 2000 - 550
    with pytest.raises(RefundExceedsPayment, match="14,50\u00a0B au plus"):
        refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="14.51")
    rest = refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="14.50")
    assert rest.remaining_cents == 0 and ledger.balance(baker) == 0
    with ledger.engine.connect() as conn:
        details = conn.execute(sa.text("SELECT kind, details FROM entries WHERE id = :i"),
                               {"i": rest.entry_id}).one()
        assert details.kind == "refund" and f'"refund_of": {paid.entry_id}' in details.details
        assert [r.amount_cents for r in refunds.refunds_of(conn, paid.entry_id)] == [550, 1450]
    ledger.assert_consistent()


def test_refund_rules(shop):
    ledger, baker, marie = shop
    rival = ledger.prestataire()
    paid = ledger.pay(marie, baker, "10.00")
    with pytest.raises(NotFound):  # not the rival's payment
        refunds.refund(ledger.uow(), rival, payment_entry_id=paid.entry_id, amount="1")
    with pytest.raises(Forbidden):
        refunds.refund(ledger.uow(), marie, payment_entry_id=paid.entry_id, amount="1")
    exchange_entry = ledger.exchange(marie, "20.00").entry_id
    with pytest.raises(NotFound):  # only payments are refunded
        refunds.refund(ledger.uow(), baker, payment_entry_id=exchange_entry, amount="1")
    with pytest.raises(InvalidInput):
        refunds.refund(ledger.uow(), baker, payment_entry_id="12", amount="1")
    # The merchant spent what it received: no refund from an empty till.
    ledger.reconvert(baker, "10.00")
    with pytest.raises(InsufficientFunds):
        refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="1")
    assert ledger.count("refunds") == 0


def test_refund_period_is_a_setting(shop):
    ledger, baker, marie = shop
    paid = ledger.pay(marie, baker, "10.00")
    ledger.setting("refunds.max_days", "0")
    with pytest.raises(RefundPeriodOver):
        refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="1")
    ledger.setting("refunds.max_days", "30")
    refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="1")


def test_refunds_and_reversals_exclude_each_other(shop):
    ledger, baker, marie = shop
    reversed_payment = ledger.pay(marie, baker, "10.00")
    ledger.reverse(reversed_payment.entry_id)
    with pytest.raises(NotRefundable):
        refunds.refund(ledger.uow(), baker, payment_entry_id=reversed_payment.entry_id,
                       amount="1")
    refunded = ledger.pay(marie, baker, "10.00")
    refund = refunds.refund(ledger.uow(), baker, payment_entry_id=refunded.entry_id,
                            amount="2")
    with pytest.raises(NotReversible, match="remboursé"):
        ledger.reverse(refunded.entry_id)
    with pytest.raises(NotReversible, match="remboursement"):
        ledger.reverse(refund.entry_id)
    ledger.assert_consistent()


def test_concurrent_refunds_never_exceed_the_payment(shop):
    ledger, baker, marie = shop
    paid = ledger.pay(marie, baker, "10.00")
    ledger.pay(marie, baker, "20.00")  # the till holds more than the payment

    def worker(i: int) -> str:
        try:
            refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="3")
            return "refunded"
        except RefundExceedsPayment:
            return "exceeds"

    outcomes = Counter(hammer(worker))
    assert outcomes == Counter(refunded=3, exceeds=5)
    with ledger.engine.connect() as conn:
        assert refunds._refunded(conn, paid.entry_id) == 900
    ledger.assert_consistent()


def test_refund_is_idempotent_with_a_key(shop):
    ledger, baker, marie = shop
    paid = ledger.pay(marie, baker, "10.00")
    one = refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="4",
                         idempotency_key="k1")
    two = refunds.refund(ledger.uow(), baker, payment_entry_id=paid.entry_id, amount="4",
                         idempotency_key="k1")
    assert one == two and ledger.count("refunds") == 1


# ---------------------------------------------------------------- password or PIN


def test_confirm_with_password_or_pin_and_throttle(ledger, new_uow):
    marie = ledger.soliste(password=PASSWORD)
    confirm.confirm(new_uow, user_id=marie.user_id, secret=PASSWORD, address="a")
    with pytest.raises(WrongSecret):
        confirm.confirm(new_uow, user_id=marie.user_id, secret="1234", address="a")
    with pytest.raises(WrongSecret):  # the PIN needs the password
        confirm.set_pin(new_uow, marie, password="wrong-pass", pin="4321", address="a")
    with pytest.raises(InvalidInput):
        confirm.set_pin(new_uow, marie, password=PASSWORD, pin="12a4", address="a")
    confirm.set_pin(new_uow, marie, password=PASSWORD, pin="4321", address="a")
    confirm.confirm(new_uow, user_id=marie.user_id, secret="4321", address="a")
    confirm.confirm(new_uow, user_id=marie.user_id, secret=PASSWORD, address="a")
    confirm.set_pin(new_uow, marie, password=PASSWORD, pin="", address="a")
    with pytest.raises(WrongSecret):  # removed
        confirm.confirm(new_uow, user_id=marie.user_id, secret="4321", address="a")
    confirm.set_pin(new_uow, marie, password=PASSWORD, pin="4321", address="a")
    for _ in range(5):
        with pytest.raises(WrongSecret):
            confirm.confirm(new_uow, user_id=marie.user_id, secret="0000", address="b")
    with pytest.raises(TooManyAttempts):  # even the right PIN waits now
        confirm.confirm(new_uow, user_id=marie.user_id, secret="4321", address="b")


def test_pay_by_number_with_an_idempotency_key(shop):
    """The JSON API pays a request by its number; a key replays the first outcome."""
    ledger, baker, marie = shop
    view = payment_requests.create_till_request(ledger.uow(), baker, amount="2")
    first = payment_requests.pay_by_id(ledger.uow(), marie, request_id=view.id,
                                       idempotency_key="k-1")
    again = payment_requests.pay_by_id(ledger.uow(), marie, request_id=view.id,
                                       idempotency_key="k-1")
    assert again == first and ledger.balance(baker) == 200
    other = payment_requests.create_till_request(ledger.uow(), baker, amount="3")
    with pytest.raises(IdempotencyConflict):  # the same key for another request
        payment_requests.pay_by_id(ledger.uow(), marie, request_id=other.id,
                                   idempotency_key="k-1")
    with pytest.raises(NotFound):
        payment_requests.pay_by_id(ledger.uow(), marie, request_id=2**40)
    karim = ledger.soliste()
    ledger.exchange(karim, "20.00")
    with pytest.raises(AlreadyPaid):
        payment_requests.pay_by_id(ledger.uow(), karim, request_id=view.id)
