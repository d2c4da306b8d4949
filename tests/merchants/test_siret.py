"""SIRET numbers: 14 digits, the SIREN's and the SIRET's Luhn keys, La Poste's rule."""

from __future__ import annotations

import pytest

from bousol.ledger.kernel import siret
from bousol.ledger.kernel.errors import InvalidSiret


@pytest.mark.parametrize(("given", "normalised"), [
    ("73282932000074", "73282932000074"),  # INSEE's own example
    ("732 829 320 00074", "73282932000074"),  # as printed on an invoice
    ("732\u00a0829\u202f320 00074", "73282932000074"),  # no-break spaces, pasted
    ("44306184100047", "44306184100047"),
    ("542 051 180 00066", "54205118000066"),
    ("55203253400646", "55203253400646"),
    # La Poste: its head office passes the Luhn key...
    ("356 000 000 00048", "35600000000048"),
    # ...its other establishments, the sum of the digits a multiple of 5 (not Luhn).
    ("35600000049837", "35600000049837"),
])
def test_valid_sirets(given, normalised):
    assert siret.validate_siret(given) == normalised


@pytest.mark.parametrize(("given", "reason"), [
    ("", "empty"),
    (None, "empty"),
    ("   ", "empty"),
    ("73282932000075", "key"),  # last digit wrong
    ("73282932000047", "key"),  # the NIC's digits swapped
    ("44306184100048", "key"),
    ("73282932000174", "key"),
    ("73282923000074", "siren_key"),  # two digits of the SIREN swapped
    ("81464741100014", "siren_key"),
    ("7328293200007", "length"),  # 13 digits
    ("732829320000740", "length"),  # 15
    ("732829320 0007 4 1", "length"),
    ("7328293200007A", "format"),
    ("732-829-320-00074", "format"),
    ("７３２８２９３２０００７４", "format"),  # full-width digits: not ASCII
    # La Poste's SIREN: neither the Luhn key nor a digit sum that is a multiple of 5.
    ("35600000049838", "key"),
])
def test_invalid_sirets_say_why(given, reason):
    with pytest.raises(InvalidSiret) as refused:
        siret.validate_siret(given)
    assert refused.value.code == "invalid_siret"
    assert refused.value.details["reason"] == reason
    assert refused.value.message.startswith(("SIRET invalide", "SIRET manquant"))


def test_the_la_poste_rule_is_for_la_poste_only():
    # Digit sum 40, a multiple of 5, but not La Poste and not a Luhn key: refused.
    assert not siret.luhn_ok("73282932000004")
    with pytest.raises(InvalidSiret):
        siret.validate_siret("73282932000004")


def test_a_wrong_length_says_how_many_digits():
    with pytest.raises(InvalidSiret) as refused:
        siret.validate_siret("1234")
    assert "14 chiffres" in refused.value.message and "4" in refused.value.message


def test_not_a_string_is_refused():
    with pytest.raises(InvalidSiret):
        siret.validate_siret(73282932000074)  # type: ignore[arg-type]


@pytest.mark.parametrize(("digits", "ok"), [
    ("0", True), ("18", True), ("79927398713", True), ("79927398710", False),
    ("732829320", True), ("732829321", False),
])
def test_luhn(digits, ok):
    assert siret.luhn_ok(digits) is ok


def test_display_groups_the_siren_then_the_nic():
    assert siret.display("73282932000074") == "732 829 320 00074"
    assert siret.display(None) == ""
