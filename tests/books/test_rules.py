"""The flow rules table: who may pay whom, by phase."""

import itertools

import pytest

from bousol.ledger.books import rules
from bousol.ledger.books.rules import Phase
from bousol.ledger.kernel.errors import FlowNotAllowed
from bousol.ledger.models import PartyKind

S, P, C = PartyKind.SOLISTE, PartyKind.PRESTATAIRE, PartyKind.CCAS
NONE = frozenset()
B2B = frozenset({Phase.B2B})
CCAS = frozenset({Phase.CCAS})
BOTH = B2B | CCAS

# (payer, payee): the sets of switched-on phases under which the flow is allowed.
EXPECTED = {
    (S, P): [NONE, B2B, CCAS, BOTH],
    (P, P): [B2B, BOTH],
    (C, S): [CCAS, BOTH],
}


@pytest.mark.parametrize(
    ("payer", "payee", "switched_on"),
    list(itertools.product(PartyKind, PartyKind, [NONE, B2B, CCAS, BOTH])),
)
def test_flow_table(payer, payee, switched_on):
    active = switched_on | rules.ALWAYS_ON
    allowed = switched_on in EXPECTED.get((payer, payee), [])
    if allowed:
        rules.check_flow(payer, payee, active)
    else:
        with pytest.raises(FlowNotAllowed) as info:
            rules.check_flow(payer, payee, active)
        assert info.value.code == "flow_not_allowed"
        assert info.value.message  # says why, in French


def test_b2b_refusal_says_the_phase_is_not_open():
    with pytest.raises(FlowNotAllowed) as info:
        rules.check_flow(P, P, rules.ALWAYS_ON)
    assert "B2B" in info.value.message and "pas encore" in info.value.message


def test_phases_from_settings():
    assert rules.active_phases({"phase.b2b": "on", "phase.ccas": "off"}) == {
        Phase.SOL_ECO, Phase.B2B}
    assert rules.active_phases({}) == {Phase.SOL_ECO}


def test_sol_eco_needs_no_settings_lookup():
    assert not rules.needs_phase_lookup(S, P)
    assert rules.needs_phase_lookup(P, P)
