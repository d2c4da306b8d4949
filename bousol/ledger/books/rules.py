"""Who may pay whom: a table of flows, each opened by a phase.

The circuits of the Bou'Sol open one after the other (../shared/domain.md): Sol-éco
(solistes pay prestataires) from the start, B2B (prestataires pay their suppliers)
and public policy (the CCAS pays aid to solistes) when the association switches them
on. Adding a flow is adding a row here, not an ``if`` in an operation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bousol.ledger.books.models import PartyKind
from bousol.ledger.kernel.errors import FlowNotAllowed
from bousol.ledger.kernel.text import N_


class Phase(enum.StrEnum):
    SOL_ECO = "sol-eco"
    B2B = "b2b"
    CCAS = "ccas"


# Sol-éco is the base circuit: always on. The others are switched by the association.
ALWAYS_ON = frozenset({Phase.SOL_ECO})
SWITCHABLE = (Phase.B2B, Phase.CCAS)
PHASE_LABELS = {
    Phase.SOL_ECO: N_("Sol-éco"),
    Phase.B2B: N_("B2B (paiements entre prestataires)"),
    Phase.CCAS: N_("Politique publique (aides du CCAS)"),
}


@dataclass(frozen=True)
class FlowRule:
    phase: Phase
    payer: PartyKind
    payee: PartyKind


FLOW_RULES: tuple[FlowRule, ...] = (
    FlowRule(Phase.SOL_ECO, PartyKind.SOLISTE, PartyKind.PRESTATAIRE),
    FlowRule(Phase.B2B, PartyKind.PRESTATAIRE, PartyKind.PRESTATAIRE),
    FlowRule(Phase.CCAS, PartyKind.CCAS, PartyKind.SOLISTE),
)

_KIND_LABELS = {
    PartyKind.SOLISTE: "un soliste",
    PartyKind.PRESTATAIRE: "un prestataire",
    PartyKind.CCAS: "le CCAS",
    PartyKind.BANK: "la banque SOL",
    PartyKind.ASSOCIATION: "l'association",
}


def _of(label: str) -> str:
    """French « de » before a label: « d'un soliste », « du CCAS », « de la banque SOL »,
    « de l'association » (elision and contraction, never « de un »)."""
    if label.startswith("le "):
        return "du " + label[3:]
    if label[:1].lower() in "aeiouyhéèêàâîôû":
        return "d'" + label
    return "de " + label


def phases_opening(payer: PartyKind, payee: PartyKind) -> frozenset[Phase]:
    return frozenset(r.phase for r in FLOW_RULES if r.payer == payer and r.payee == payee)


def needs_phase_lookup(payer: PartyKind, payee: PartyKind) -> bool:
    """False when an always-on phase opens the flow (no need to read the settings)."""
    return not (phases_opening(payer, payee) & ALWAYS_ON)


def check_flow(payer: PartyKind, payee: PartyKind, active: frozenset[Phase]) -> None:
    opening = phases_opening(payer, payee)
    if opening & (active | ALWAYS_ON):
        return
    who = f"{_of(_KIND_LABELS[payer])} vers {_KIND_LABELS[payee]}"
    if not opening:
        raise FlowNotAllowed(f"Un paiement {who} n'est prévu dans aucune phase du Bou'Sol.")
    names = " ou ".join(PHASE_LABELS[p] for p in sorted(opening))
    raise FlowNotAllowed(
        f"Un paiement {who} n'est possible qu'une fois la phase {names} ouverte "
        "par l'association ; elle ne l'est pas encore."
    )


def active_phases(settings: dict[str, str]) -> frozenset[Phase]:
    on = {p for p in SWITCHABLE if settings.get(f"phase.{p.value}") == "on"}
    return frozenset(on) | ALWAYS_ON
