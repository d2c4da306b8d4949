"""Property-based test: random sequences of exchanges, payments, reconversions,
reversals and phase switches, checked against a model that predicts each outcome.

After every step: the model's balances equal the database's, every invariant of
``flask bousol verify`` holds, and each operation either did exactly what the model
predicted or failed with exactly the error the model predicted (and wrote nothing).
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from bousol.ledger.books import operations
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError
from tests.helpers import BANK

SYSTEM_CODES = ("issuance", "eur_outside", "eur_reserve", "desk_cash", "bonus_fund",
                "fees_income", "notes_circulation")
SHORTFALL = {"eur_reserve": "reserve_insufficient", "bonus_fund": "bonus_fund_insufficient",
             "desk_cash": "desk_cash_insufficient"}
TENDER_ACCOUNT = {"cash": "desk_cash", "cheque": "desk_cash", "card": "eur_reserve",
                  "transfer": "eur_reserve"}

amounts = st.integers(min_value=1, max_value=60_000).map(money.format_plain)


def make_machine(ledger):
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.solistes = [ledger.soliste() for _ in range(3)]
            self.prestataires = [ledger.prestataire() for _ in range(3)]
            ledger.subsidy("300.00")
            self.balance: dict[str, int] = defaultdict(int)
            for code in SYSTEM_CODES:
                self.balance[code] = ledger.system(code)
            # Examples share one database: reset every setting the model assumes.
            self.b2b = False
            ledger.phase("b2b", False)
            ledger.setting("reconversion.fee_bp", "500")
            # The model posts every exchange at once: none waits for a second person
            # (that rule has its own tests, tests/desk/test_exchange_approvals.py).
            ledger.setting("exchange.approval_above_cents", "100000000")
            ledger.setting("exchange.approval_daily_above_cents", "100000000")
            self.effects: dict[int, list[tuple[str, int]]] = {}
            self.reversed: set[int] = set()  # entries reversed
            self.reversal_ids: set[int] = set()  # the reversing entries themselves
            self.fee_bp = 500
            self.keys: dict[str, tuple] = {}

        # -- helpers ------------------------------------------------------
        def expect(self, legs: list[tuple[str, int]], call, shortfall_default="insufficient_funds"):
            """Predict the outcome of posting ``legs``, run ``call``, compare."""
            deltas: dict[str, int] = {}
            for account, amount in legs:
                deltas[account] = deltas.get(account, 0) + amount
            predicted_error = None
            for account, delta in deltas.items():
                # The bonus fund may go below zero: the association advances the bonus.
                overdraft_ok = account in ("issuance", "eur_outside", "bonus_fund")
                if delta < 0 and not overdraft_ok and self.balance[account] + delta < 0:
                    predicted_error = SHORTFALL.get(account, shortfall_default)
                    break
            return self.run(call, predicted_error, deltas, legs)

        def run(self, call, predicted_error, deltas=None, legs=None):
            try:
                result = call()
            except DomainError as error:
                assert error.code == predicted_error, (error.code, predicted_error)
                return None
            assert predicted_error is None, f"expected {predicted_error}, got success"
            for account, delta in deltas.items():
                self.balance[account] += delta
            self.effects[result.entry_id] = legs
            return result

        # -- rules --------------------------------------------------------
        @rule(who=st.integers(0, 2), euros=amounts, tender=st.sampled_from(list(TENDER_ACCOUNT)))
        def exchange(self, who, euros, tender):
            party = self.solistes[who]
            euro_cents = money.parse_amount(euros)
            # An oracle of its own (not the code under test): 21/20, rounded down.
            bsol = math.floor(Fraction(euro_cents * 21, 20))
            bonus = bsol - euro_cents
            legs = [("eur_outside", -euro_cents), (TENDER_ACCOUNT[tender], euro_cents),
                    ("issuance", -bsol), (party.party_code, bsol)]
            if bonus:
                legs += [("bonus_fund", -bonus), ("eur_reserve", bonus)]
            self.expect(legs, lambda: ledger.exchange(party, euros, tender=tender))

        @rule(payer=st.integers(0, 5), payee=st.integers(0, 5), amount=amounts)
        def pay(self, payer, payee, amount):
            people = self.solistes + self.prestataires
            src, dst = people[payer], people[payee]
            cents = money.parse_amount(amount)
            flow_ok = (
                src is not dst and dst.role == "prestataire"
                and (src.role == "soliste" or self.b2b)
            )
            if not flow_ok:
                self.run(lambda: ledger.pay(src, dst, amount), "flow_not_allowed")
                return
            self.expect([(src.party_code, -cents), (dst.party_code, cents)],
                        lambda: ledger.pay(src, dst, amount))

        @rule(who=st.integers(0, 2), amount=amounts)
        def reconvert(self, who, amount):
            party = self.prestataires[who]
            cents = money.parse_amount(amount)
            fee = math.ceil(Fraction(cents * self.fee_bp, 10_000))  # rounded up
            if cents - fee <= 0:
                self.run(lambda: ledger.reconvert(party, amount), "invalid_amount")
                return
            legs = [(party.party_code, -cents), ("issuance", cents), ("eur_reserve", -cents),
                    (f"{party.party_code}:EUR", cents - fee)]
            if fee:
                legs.append(("fees_income", fee))
            self.expect(legs, lambda: ledger.reconvert(party, amount))

        @rule(position=st.integers(min_value=0, max_value=10_000))
        def reverse(self, position):
            # A position, drawn whatever the state (not an id, not only when there is
            # something to reverse): examples share one database, so what exists may
            # differ between replays, and what Hypothesis draws must not.
            if not self.effects:
                return
            made = sorted(self.effects)
            entry_id = made[position % len(made)]
            legs = self.effects[entry_id]
            if entry_id in self.reversed:
                self.run(lambda: ledger.reverse(entry_id), "already_reversed")
                return
            if entry_id in self.reversal_ids:
                self.run(lambda: ledger.reverse(entry_id), "not_reversible")
                return
            result = self.expect([(a, -x) for a, x in legs], lambda: ledger.reverse(entry_id))
            if result is not None:
                self.reversed.add(entry_id)
                self.reversal_ids.add(result.entry_id)

        @rule(euros=amounts)
        def bank_cash(self, euros):
            cents = money.parse_amount(euros)
            self.expect([("desk_cash", -cents), ("eur_reserve", cents)],
                        lambda: operations.bank_desk_cash(ledger.uow(), BANK, euros=euros))

        @rule(euros=amounts)
        def subsidy(self, euros):
            cents = money.parse_amount(euros)
            self.expect([("eur_outside", -cents), ("bonus_fund", cents)],
                        lambda: ledger.subsidy(euros))

        @rule(payer=st.integers(0, 2), payee=st.integers(0, 5), amount=amounts,
              key=st.sampled_from(["k1", "k2", "k3"]))
        def pay_with_key(self, payer, payee, amount, key):
            """Keys are reused at random: a replay returns the first outcome, a different
            request under a used key is a conflict, and money moves at most once."""
            src = self.solistes[payer]
            dst = (self.solistes + self.prestataires)[payee]
            cents = money.parse_amount(amount)
            request = (dst.party_code, cents)
            full_key = f"{src.party_code}-{key}"
            call = lambda: ledger.pay(src, dst, amount, idempotency_key=full_key)  # noqa: E731
            if full_key in self.keys:
                first_request, first_outcome = self.keys[full_key]
                if first_request != request:
                    self.run(call, "idempotency_conflict")
                elif isinstance(first_outcome, str):
                    self.run(call, first_outcome)
                else:
                    assert call() == first_outcome  # same result, nothing moved
                return
            if dst.role != "prestataire":
                self.run(call, "flow_not_allowed")
                self.keys[full_key] = (request, "flow_not_allowed")
                return
            balance_before = self.balance[src.party_code]
            result = self.expect([(src.party_code, -cents), (dst.party_code, cents)], call)
            outcome = result if result is not None else (
                "insufficient_funds" if balance_before < cents else None)
            self.keys[full_key] = (request, outcome)

        @rule(on=st.booleans())
        def switch_b2b(self, on):
            ledger.phase("b2b", on)
            self.b2b = on

        @rule(bp=st.sampled_from([0, 250, 500, 1000]))
        def change_fee(self, bp):
            ledger.setting("reconversion.fee_bp", str(bp))
            self.fee_bp = bp

        # -- invariants ----------------------------------------------------
        @invariant()
        def books_match_the_model(self):
            for party in self.solistes + self.prestataires:
                assert ledger.balance(party) == self.balance[party.party_code]
                assert ledger.balance(party, "EUR") == self.balance[f"{party.party_code}:EUR"]
            for code in SYSTEM_CODES:
                assert ledger.system(code) == self.balance[code], code

        @invariant()
        def ledger_verifies(self):
            ledger.assert_consistent()

    return LedgerMachine


def test_random_operations_keep_every_invariant(ledger, backend):
    examples = 20 if backend == "sqlite" else 8
    machine = make_machine(ledger)
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=examples, stateful_step_count=25, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
