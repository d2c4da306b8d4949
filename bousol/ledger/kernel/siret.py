"""SIRET numbers: normalise and check. No Flask here.

A SIRET (INSEE) is 14 digits: the SIREN of the business (9 digits, the last one a Luhn
key) followed by the NIC of the establishment (5 digits, the last one a Luhn key over
all 14 digits). It is typed with or without spaces (``732 829 320 00074``) and stored as
its 14 digits. Both keys are checked.

La Poste is the one known exception: its establishments, too many for the NIC's key,
share the SIREN 356 000 000 and are checked by the sum of their 14 digits, which must
be a multiple of 5 (its head office, 356 000 000 00048, also passes the Luhn key).

Refusals are :class:`InvalidSiret` with a French message; ``details["reason"]`` says
which rule failed (``empty``, ``format``, ``length``, ``siren_key``, ``key``).
"""

from __future__ import annotations

import re

from bousol.ledger.kernel.errors import InvalidSiret

LA_POSTE_SIREN = "356000000"
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def normalise(text: str | None) -> str:
    """Spaces (any kind) removed: ``732 829 320 00074`` → ``73282932000074``."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidSiret(reason="type")
    return _SPACES.sub("", text)


def luhn_ok(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (minus 9 above 9);
    the sum is a multiple of 10."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def validate_siret(text: str | None) -> str:
    """The SIRET, as its 14 digits, or :class:`InvalidSiret`."""
    siret = normalise(text)
    if not siret:
        raise InvalidSiret("SIRET manquant.", reason="empty")
    if not siret.isascii() or not siret.isdigit():
        raise InvalidSiret("SIRET invalide : des chiffres seulement (espaces permis).",
                           reason="format")
    if len(siret) != 14:
        raise InvalidSiret(
            f"SIRET invalide : il compte 14 chiffres, celui-ci en a {len(siret)}.",
            reason="length")
    siren = siret[:9]
    if not luhn_ok(siren):
        raise InvalidSiret(
            "SIRET invalide : la clé du numéro SIREN (les 9 premiers chiffres) ne "
            "correspond pas (erreur de frappe ?).", reason="siren_key")
    if siren == LA_POSTE_SIREN:
        valid = luhn_ok(siret) or sum(int(c) for c in siret) % 5 == 0
    else:
        valid = luhn_ok(siret)
    if not valid:
        raise InvalidSiret(
            "SIRET invalide : la clé de contrôle ne correspond pas (erreur de frappe ?).",
            reason="key")
    return siret


def display(siret: str | None) -> str:
    """``732 829 320 00074``: the SIREN in groups of three, then the NIC."""
    if not siret:
        return ""
    return f"{siret[0:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
