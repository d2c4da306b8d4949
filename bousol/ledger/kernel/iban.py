"""IBAN and BIC: normalise, check, display. No Flask here.

An IBAN (ISO 13616) is accepted when, once spaces are removed and letters upper-cased,
it starts with the code of a country of the SEPA scheme, has that country's length,
and passes the mod-97 check. A BIC (ISO 9362) has 8 or 11 characters and the pattern
of the pain.001 schema. Refusals are :class:`InvalidIban` / :class:`InvalidBic` with a
French message; ``details["reason"]`` says which rule failed.
"""

from __future__ import annotations

import re

from bousol.ledger.kernel.errors import InvalidBic, InvalidIban

# IBAN length of every country (and territory with its own code) of the SEPA
# credit-transfer scheme, from the SWIFT IBAN registry. French overseas departments
# and Monaco's neighbours use FR or their own code as listed.
SEPA_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AL": 28, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23,
    "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}

_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}")
# The BICIdentifier pattern of pain.001.001.03.xsd.
_BIC_SHAPE = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?")
_SPACES = re.compile(r"[\s\u00a0\u202f]+")


def normalise(text: str | None) -> str:
    """Spaces (any kind) removed, letters upper-cased: ``fr76 3000 6…`` → ``FR763000 6…``."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InvalidIban(reason="type")
    return _SPACES.sub("", text).upper()


def mod97(iban: str) -> int:
    """ISO 13616 check: move the first four characters to the end, letters to numbers
    (A = 10 … Z = 35), and take the remainder by 97; a valid IBAN gives 1."""
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97


def validate_iban(text: str | None) -> str:
    """The IBAN, normalised, or :class:`InvalidIban`."""
    iban = normalise(text)
    if not iban:
        raise InvalidIban("IBAN manquant.", reason="empty")
    if len(iban) > 34 or not _IBAN_SHAPE.fullmatch(iban):
        raise InvalidIban(
            "IBAN invalide : il commence par le code du pays et deux chiffres de clé "
            "(ex. FR76…), puis des lettres et des chiffres seulement.",
            reason="format",
        )
    country = iban[:2]
    expected = SEPA_IBAN_LENGTHS.get(country)
    if expected is None:
        raise InvalidIban(
            f"IBAN invalide : le pays « {country} » n'est pas dans la zone SEPA.",
            reason="country",
        )
    if len(iban) != expected:
        raise InvalidIban(
            f"IBAN invalide : un IBAN {country} compte {expected} caractères, "
            f"celui-ci en a {len(iban)}.",
            reason="length",
        )
    if mod97(iban) != 1:
        raise InvalidIban(
            "IBAN invalide : la clé de contrôle ne correspond pas (erreur de frappe ?).",
            reason="checksum",
        )
    return iban


def validate_bic(text: str | None) -> str | None:
    """The BIC, normalised, ``None`` when left empty, or :class:`InvalidBic`."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidBic(reason="type")
    bic = _SPACES.sub("", text).upper()
    if not bic:
        return None
    if not _BIC_SHAPE.fullmatch(bic):
        raise InvalidBic(reason="format")
    return bic


def display(iban: str | None) -> str:
    """Groups of four for reading aloud and checking: ``FR76 3000 6000 0112 …``."""
    if not iban:
        return ""
    compact = normalise(iban)
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
