"""Voucher codes: 80 random bits, a check character that catches typing errors."""

from __future__ import annotations

import random

import pytest

from bousol.ledger.ccas import voucher_codes as codes
from bousol.ledger.kernel.errors import InvalidCode


def test_a_code_reads_back_however_it_is_typed():
    body = codes.new_body()
    shown = codes.display(body)
    assert len(body) == 16 and len(shown) == 21 and shown.count("-") == 4
    assert codes.parse(shown) == body
    assert codes.parse(" " + shown.lower().replace("-", " ") + " ") == body
    with_o = codes.display("0" * 16).replace("0", "O")  # O and 0, I/L and 1 read alike
    assert codes.parse(with_o) == "0" * 16
    assert codes.parse(f"https://bousol.example/prestataire/bons/{shown}") == body


def test_eighty_bits_of_randomness():
    assert len(codes.ALPHABET) ** codes.BODY_LENGTH == 2**80
    assert len({codes.new_body() for _ in range(1000)}) == 1000


def test_known_check_character():
    # Worked by hand: Luhn mod 32 over "0000000000000001": the last 1 doubles to 2.
    assert codes.check_character("0000000000000001") == codes.ALPHABET[30]


@pytest.mark.parametrize("typed", ["", "ABC", "7K3M-Q9XD-2HPT-W4RB", "U" * 17, 12345, None])
def test_malformed_codes(typed):
    with pytest.raises(InvalidCode):
        codes.parse(typed)


def test_every_single_typo_and_almost_every_swap_is_caught():
    rng = random.Random(7)
    missed_typos, missed_swaps = 0, set()
    for _ in range(200):
        body = "".join(rng.choice(codes.ALPHABET) for _ in range(16))
        full = body + codes.check_character(body)
        for i in range(17):
            for c in codes.ALPHABET:
                if c != full[i]:
                    try:
                        codes.parse(full[:i] + c + full[i + 1:])
                        missed_typos += 1
                    except InvalidCode:
                        pass
        for i in range(16):
            if full[i] != full[i + 1]:
                try:
                    codes.parse(full[:i] + full[i + 1] + full[i] + full[i + 2:])
                    missed_swaps.add("".join(sorted(full[i:i + 2])))
                except InvalidCode:
                    pass
    assert missed_typos == 0
    assert missed_swaps <= {"0Z"}  # Luhn mod N's one blind spot
