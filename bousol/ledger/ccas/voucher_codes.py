"""Aid voucher codes: 80 random bits and a check character.

A code is 16 characters of Crockford's base 32 (digits and capitals without I, L, O,
U: 32⁸ × 32⁸ = 2⁸⁰ codes) followed by one check character computed with the Luhn
mod N algorithm over the same alphabet. Luhn mod N catches every single mistyped
character and every swap of two neighbours except 0 ↔ Z (tests/ccas/test_voucher_codes.py
counts them), so a typing error is told apart from an unknown code (``invalid_code``,
422, against ``not_found``, 404). Printed in groups of four: ``7K3M-Q9XD-2HPT-W4RB-C``.
Reading is forgiving the way Crockford intended: case, spaces and dashes do not matter,
O reads as 0, I and L as 1.
"""

from __future__ import annotations

import secrets

from bousol.ledger.kernel.errors import InvalidCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 16
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def check_character(body: str) -> str:
    """Luhn mod 32 over the body (the rightmost character is doubled)."""
    n = len(ALPHABET)
    total, factor = 0, 2
    for char in reversed(body):
        addend = factor * _VALUE[char]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_body() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))


def display(body: str) -> str:
    """``7K3MQ9XD2HPTW4RB`` → ``7K3M-Q9XD-2HPT-W4RB-C`` (with its check character)."""
    groups = [body[i:i + 4] for i in range(0, BODY_LENGTH, 4)]
    return "-".join([*groups, check_character(body)])


def parse(typed: object) -> str:
    """The body of a typed or scanned code, or ``InvalidCode``.

    A scanned QR code carries the link to the voucher's page; only its last path part
    is the code.
    """
    if not isinstance(typed, str) or len(typed) > 200:
        raise InvalidCode()
    text = typed.strip().rstrip("/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in text.upper() if c not in " -\u00a0").translate(_READS_AS)
    if len(cleaned) != BODY_LENGTH + 1 or any(c not in _VALUE for c in cleaned):
        raise InvalidCode("Un code de bon compte 17 caractères (lettres et chiffres), "
                          "par exemple 7K3M-Q9XD-2HPT-W4RB-C.")
    body, check = cleaned[:BODY_LENGTH], cleaned[BODY_LENGTH]
    if check_character(body) != check:
        raise InvalidCode()
    return body
