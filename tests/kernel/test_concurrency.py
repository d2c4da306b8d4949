"""Concurrent requests on one account never overspend it, on SQLite and PostgreSQL.

Threads, each with its own connection, start together behind a barrier and hammer
the same accounts. SQLite serialises writers with BEGIN IMMEDIATE; PostgreSQL locks
the account rows FOR UPDATE in ascending id order.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bousol.ledger.kernel.errors import AlreadyReversed, DomainError, InsufficientFunds
from tests.helpers import THREADS, hammer


def total_bsol(ledger) -> int:
    return -ledger.system("issuance")


def test_concurrent_payments_never_overspend(ledger):
    ledger.subsidy("100.00")
    marie = ledger.soliste()
    ledger.exchange(marie, "100.00")  # 105,00 B
    shops = [ledger.prestataire() for _ in range(3)]

    def worker(i: int) -> Counter:
        rng, seen = random.Random(i), Counter()
        for _ in range(10):
            try:
                ledger.pay(marie, rng.choice(shops), "3.00")
                seen["paid"] += 1
            except InsufficientFunds:
                seen["refused"] += 1
        return seen

    outcomes = hammer(worker)
    paid = sum(o["paid"] for o in outcomes)
    assert paid == 10_500 // 300 == 35  # every covered payment passed, no more
    assert sum(o["refused"] for o in outcomes) == THREADS * 10 - paid
    assert ledger.balance(marie) == 10_500 - paid * 300 == 0
    assert sum(ledger.balance(s) for s in shops) == paid * 300
    assert total_bsol(ledger) == 10_500  # conserved
    ledger.assert_consistent()


def test_crossing_b2b_transfers_do_not_deadlock(ledger):
    ledger.subsidy("100.00")
    ledger.phase("b2b", True)
    marie = ledger.soliste()
    ledger.exchange(marie, "200.00")
    shops = [ledger.prestataire() for _ in range(4)]
    for shop in shops:
        ledger.pay(marie, shop, "50.00")

    def worker(i: int) -> int:
        rng, done = random.Random(100 + i), 0
        for _ in range(15):
            payer, payee = rng.sample(shops, 2)
            try:
                ledger.pay(payer, payee, f"{rng.randint(1, 3000) / 100:.2f}")
                done += 1
            except InsufficientFunds:
                pass
        return done

    assert sum(hammer(worker)) > 0
    assert all(ledger.balance(s) >= 0 for s in shops)
    assert sum(ledger.balance(s) for s in shops) == 20_000
    ledger.assert_consistent()


def test_same_idempotency_key_at_once_moves_money_once(ledger):
    ledger.subsidy("10.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00")
    entries_before = ledger.count("entries")

    results = hammer(lambda i: ledger.pay(marie, baker, "7.00", idempotency_key="till-42"))
    assert len({r.entry_id for r in results}) == 1
    assert ledger.count("entries") == entries_before + 1
    assert ledger.balance(baker) == 700
    ledger.assert_consistent()


def test_one_entry_reversed_once_under_concurrency(ledger):
    ledger.subsidy("10.00")
    marie, baker = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "100.00")
    payment = ledger.pay(marie, baker, "30.00")

    def worker(i: int) -> str:
        try:
            ledger.reverse(payment.entry_id)
            return "reversed"
        except AlreadyReversed:
            return "already"

    outcomes = Counter(hammer(worker))
    assert outcomes == {"reversed": 1, "already": THREADS - 1}
    assert ledger.balance(baker) == 0
    ledger.assert_consistent()


@pytest.mark.parametrize("rounds", [3])
def test_mixed_load_conserves_money(ledger, rounds):
    """Exchanges, payments and reconversions at once, from several desks and tills."""
    ledger.subsidy("500.00")
    solistes = [ledger.soliste() for _ in range(4)]
    shops = [ledger.prestataire() for _ in range(3)]
    for s in solistes:
        ledger.exchange(s, "50.00", tender="card")

    def worker(i: int) -> None:
        rng = random.Random(i)
        for _ in range(rounds * 4):
            op = rng.choice(["exchange", "pay", "pay", "reconvert"])
            try:
                if op == "exchange":
                    ledger.exchange(rng.choice(solistes), "10.00", tender="card")
                elif op == "pay":
                    ledger.pay(rng.choice(solistes), rng.choice(shops), "4.00")
                else:
                    ledger.reconvert(rng.choice(shops), "2.00")
            except DomainError as error:
                assert error.code in ("insufficient_funds", "reserve_insufficient")

    hammer(worker)
    assert all(ledger.balance(p) >= 0 for p in solistes + shops)
    ledger.assert_consistent()
