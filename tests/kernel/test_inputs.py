"""The input cleaners (bousol/ledger/kernel/inputs.py), as tables: each domain's rule is
one set of parameters, and the words its people read are pinned here."""

import dataclasses
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bousol.ledger.kernel import inputs
from bousol.ledger.kernel.errors import InvalidInput, NotFound, UnknownParty

# ---------------------------------------------------------------- text


class No(str):
    """In a table: the value is refused with this message."""


def refusal(call):
    """The message and the details of the InvalidInput ``call`` raises."""
    with pytest.raises(InvalidInput) as refused:
        call()
    assert refused.value.code == "invalid_input"
    return refused.value.message, refused.value.details


def check(call, expected):
    if isinstance(expected, No):
        return refusal(call)
    assert call() == expected
    return None


# (value, what the forms' rule gives: the text, or the message): limit 10, label "Nom",
# field "name", blank first (the collective's and the CCAS's rule).
LABELLED = [
    ("  Marie  ", "Marie"),
    ("Marie Dupont", No("Nom : 10 caractères au plus.")),
    ("  " + "x" * 10 + "  ", "x" * 10),  # the limit counts once trimmed
    (None, None),
    ("", None),
    ("   ", None),
    ("\t\n ", None),  # blank first: a tab or a line break alone is missing, not refused
    (12, No("Nom : texte attendu.")),
    (b"Marie", No("Nom : texte attendu.")),
    ("Ma\x00rie", No("Nom : caractères non imprimables.")),
    ("Ma\nrie", No("Nom : caractères non imprimables.")),
    ("Ma\u0085rie", No("Nom : caractères non imprimables.")),
    ("Ma\ud800rie", No("Nom : caractères non imprimables.")),
    ("Zoé\u00a0L.", "Zoé\u00a0L."),  # a no-break space is printable, a full stop no refusal
]


@pytest.mark.parametrize(("value", "expected"), LABELLED)
def test_text_with_the_forms_words(value, expected):
    def call():
        return inputs.text(value, 10, "Nom", field="name")

    if (got := check(call, expected)) is not None:
        assert got == (expected, {"field": "name"})


@pytest.mark.parametrize("value", [None, "", "  ", "\t"])
def test_a_required_text_names_what_is_missing(value):
    assert refusal(lambda: inputs.text(value, 10, "Titre", field="title", required=True)) \
        == ("Titre : obligatoire.", {"field": "title"})


def test_without_a_field_the_details_are_empty():
    assert refusal(lambda: inputs.text("x" * 11, 10, "Nom")) == ("Nom : 10 caractères au plus.", {})


# blank_first=False (a prestataire's application, a partner's details, a memo): the
# characters are checked before the blankness.
@pytest.mark.parametrize(("value", "expected"), [
    ("   ", None),
    ("", None),
    ("\t", No("Nom : caractères non imprimables.")),
    (" \n ", No("Nom : caractères non imprimables.")),
    (" Marie ", "Marie"),
])
def test_characters_first(value, expected):
    def call():
        return inputs.text(value, 10, "Nom", field="name", blank_first=False)

    if (got := check(call, expected)) is not None:
        assert got[0] == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("Un\r\ndeux\rtrois\nquatre", "Un\ndeux\ntrois\nquatre"),  # line breaks as \n
    ("  Un\n\n  ", "Un"),
    ("Un\tdeux", No("Exposé : caractères non imprimables.")),  # a tab is still refused
    ("Un\x00", No("Exposé : caractères non imprimables.")),
    ("\n\n", None),
])
def test_multiline(value, expected):
    def call():
        return inputs.text(value, 50, "Exposé", field="body", multiline=True)

    if (got := check(call, expected)) is not None:
        assert got[0] == expected


def test_no_limit_once_trimmed():
    assert inputs.text("x" * 10_000, None) == "x" * 10_000


# ---------------------------------------------------------------- memo

MEMO_TOO_LONG = "Libellé trop long (au plus 500 caractères)."
MEMO_UNPRINTABLE = "Le libellé contient des caractères non imprimables."


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("", None),
    ("   ", None),
    ("  loyer de mars  ", "loyer de mars"),
    ("x" * 500, "x" * 500),
    ("x" * 501, No(MEMO_TOO_LONG)),
    (" " * 495 + "x" * 6, No(MEMO_TOO_LONG)),  # counted as typed, before trimming
    (12, No(MEMO_TOO_LONG)),  # anything but text: the memo's one answer
    (["loyer"], No(MEMO_TOO_LONG)),
    ("\t", No(MEMO_UNPRINTABLE)),  # characters before blankness
    ("loyer\nde mars", No(MEMO_UNPRINTABLE)),
    ("loyer\x00", No(MEMO_UNPRINTABLE)),
    ("loyer\ud800", No(MEMO_UNPRINTABLE)),
    ("loyer — 12 € ✓", "loyer — 12 € ✓"),
])
def test_memo(value, expected):
    if (got := check(lambda: inputs.memo(value), expected)) is not None:
        assert got == (expected, {})


def test_a_memo_with_its_own_limit():
    assert refusal(lambda: inputs.memo("x" * 201, limit=200))[0] \
        == "Libellé trop long (au plus 200 caractères)."


# The CCAS's names and references: a memo's words for the characters and the 500
# characters as typed, the form's for the rest (bousol/ledger/ccas/vouchers.py).
VOUCHER_WORDS = dataclasses.replace(inputs.MEMO_WORDS, not_text="{label} invalide.")


@pytest.mark.parametrize(("value", "expected"), [
    ("  REF-1 ", "REF-1"),
    ("   ", No("Référence : obligatoire.")),
    (None, No("Référence : obligatoire.")),
    (12, No("Référence invalide.")),
    ("R\x00", No(MEMO_UNPRINTABLE)),
    ("x" * 41, No("Référence : 40 caractères au plus.")),
    ("x" * 501, No(MEMO_TOO_LONG)),
])
def test_the_ccas_words(value, expected):
    def call():
        return inputs.text(value, 40, "Référence", required=True, raw_limit=inputs.MEMO_MAX,
                           messages=VOUCHER_WORDS)

    if (got := check(call, expected)) is not None:
        assert got == (expected, {})


printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=60)


@given(printable)
def test_printable_text_comes_back_trimmed(value):
    assert inputs.text(value, None) == (value.strip() or None)
    assert inputs.memo(value) == (value.strip() or None)


@given(st.text(max_size=80), st.integers(1, 60), st.booleans(), st.booleans())
def test_what_text_accepts_it_keeps_within_its_rules(value, limit, multiline, blank_first):
    try:
        cleaned = inputs.text(value, limit, "Nom", multiline=multiline, blank_first=blank_first)
    except InvalidInput as refused:
        assert refused.message.startswith("Nom : ")
        return
    if cleaned is not None:
        assert cleaned == cleaned.strip() and 0 < len(cleaned) <= limit
        assert all(unicodedata.category(c) not in ("Cc", "Cs") or c == "\n" for c in cleaned)
        assert "\r" not in cleaned
        assert multiline or "\n" not in cleaned


# ---------------------------------------------------------------- party codes


@pytest.mark.parametrize("code", ["S-000001", "P-123456", "C-000003", "B-999999", "A-000001"])
def test_party_codes(code):
    assert inputs.is_party_code(code)
    assert inputs.party_code(code) == code


@pytest.mark.parametrize("code", [
    "L-000001",  # a partner: not a party
    "s-000001", "S000001", "S-00001", "S-0000001", " S-000001", "S-000001\n", "X-000001",
    "S-00000١", "", None, 12, ["S-000001"],
])
def test_not_party_codes(code):
    assert not inputs.is_party_code(code)
    with pytest.raises(UnknownParty) as refused:
        inputs.party_code(code)
    assert refused.value.message == f"Aucun adhérent ne porte le code {str(code)[:20]!r}."


def test_the_prefixes_name_who_is_meant():
    assert inputs.is_party_code("L-000001", "L")
    assert not inputs.is_party_code("A-000001", "SPCB")  # the association pays no fee
    assert inputs.party_code("P-000002", "P") == "P-000002"
    with pytest.raises(UnknownParty):
        inputs.party_code("S-000002", "P")


@pytest.mark.parametrize(("typed", "code"), [
    ("P-000002", "P-000002"), ("p 000002", "P-000002"), ("P000002", "P-000002"),
    (" P – 000002 ", "P-000002"), ("p\u00a0000\u202f002", "P-000002"),
    ("Marie", "MARIE"), ("  p-00002 ", "P-00002"), ("", ""), (None, ""), (7, ""),
])
def test_normalise_party_code(typed, code):
    assert inputs.normalise_party_code(typed) == code


@given(st.sampled_from("SPCBA"), st.integers(0, 999_999))
def test_every_code_is_found_as_typed_and_as_stored(letter, number):
    code = f"{letter}-{number:06d}"
    assert inputs.party_code(code) == code
    assert inputs.normalise_party_code(f" {letter.lower()} {number:06d}") == code


# ---------------------------------------------------------------- database ids


@pytest.mark.parametrize(("value", "maximum", "ok"), [
    (1, inputs.INT_ID_MAX, True),
    (2**31 - 1, inputs.INT_ID_MAX, True),
    (2**31, inputs.INT_ID_MAX, False),
    (2**31, inputs.BIGINT_ID_MAX, True),
    (2**63 - 1, inputs.BIGINT_ID_MAX, True),
    (2**63, inputs.BIGINT_ID_MAX, False),
    (0, inputs.INT_ID_MAX, False),
    (-1, inputs.INT_ID_MAX, False),
    (True, inputs.INT_ID_MAX, False),  # a bool is an int in Python, never an id
    (False, inputs.INT_ID_MAX, False),
    ("1", inputs.INT_ID_MAX, False),
    (1.0, inputs.INT_ID_MAX, False),
    (None, inputs.INT_ID_MAX, False),
])
def test_database_ids(value, maximum, ok):
    assert inputs.is_database_id(value, maximum) is ok
    if ok:
        assert inputs.database_id(value, NotFound("Introuvable."), maximum=maximum) == value
    else:
        with pytest.raises(NotFound) as refused:
            inputs.database_id(value, NotFound("Bon d'aide introuvable."), maximum=maximum)
        assert refused.value.message == "Bon d'aide introuvable."


def test_the_error_may_be_a_class():
    with pytest.raises(UnknownParty) as refused:
        inputs.database_id(0, UnknownParty)
    assert refused.value.message == UnknownParty.default_message


@given(st.integers())
def test_an_id_is_positive_and_fits_its_column(value):
    assert inputs.is_database_id(value) is (0 < value < 2**31)
    assert inputs.is_database_id(value, inputs.BIGINT_ID_MAX) is (0 < value < 2**63)


# ---------------------------------------------------------------- contact details


@pytest.mark.parametrize(("value", "ok"), [
    ("marie@exemple.fr", True), ("a.b+c@sous.domaine.org", True), (None, True),
    ("marie", False), ("marie@exemple", False), ("marie@exemple.f", False),
    ("ma rie@exemple.fr", False), ("marie@@exemple.fr", False), ("@exemple.fr", False),
    ("x" * 65 + "@exemple.fr", False),
])
def test_email(value, ok):
    if ok:
        assert inputs.email(value) == value
    else:
        assert refusal(lambda: inputs.email(value)) == ("Adresse électronique invalide.", {})


def test_email_with_the_applications_words():
    message = "Adresse électronique invalide (ex. contact@exemple.fr)."
    assert refusal(lambda: inputs.email("marie", message=message, field="email")) \
        == (message, {"field": "email"})


@pytest.mark.parametrize(("value", "expected"), [
    ("06 12 34 56 78", "0612345678"), ("06.12.34.56.78", "0612345678"),
    ("+33 (0)6-12-34-56-78", "+330612345678"), ("  061234  ", "061234"),
    (None, None), ("", None), ("   ", None),
    ("12345", "invalid"), ("0" * 16, "invalid"), ("06 12 AB", "invalid"), ("++33612345", "invalid"),
    ("06\u00a012\u00a034\u00a056", "06123456"),  # a no-break space is a space
])
def test_phone(value, expected):
    if expected == "invalid":
        assert refusal(lambda: inputs.phone(value)) \
            == ("Numéro de téléphone invalide (6 à 15 chiffres).", {})
        assert refusal(lambda: inputs.phone(value, field="phone"))[1] == {"field": "phone"}
    else:
        assert inputs.phone(value) == expected


@given(st.from_regex(r"\+?[0-9]{6,15}", fullmatch=True))
def test_a_phone_number_in_digits_stays_as_it_is(number):
    assert inputs.phone(number) == number
    assert inputs.phone(" ".join(number)) == number
