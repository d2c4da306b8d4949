"""Amount parsing and the exchange arithmetic, as tables."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import InvalidAmount


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("12.50", 1250), ("12,50", 1250), ("12", 1200), ("0.01", 1), ("12.5", 1250),
        (" 7.00 ", 700), ("1000000.00", 100_000_000), ("1 234,56", 123_456),
        (5, 500), (Decimal("21.00"), 2100), (Decimal("0.10"), 10),
    ],
)
def test_parse_amount_accepts(value, cents):
    assert money.parse_amount(value) == cents


@pytest.mark.parametrize(
    "value",
    [
        "0", "0.00", "-1", "-0.01", "1.234", "1000000.01", "abc", "", " ", "1e3", "NaN",
        "Infinity", "12.", ".5", "1,2,3", None, True, 12.5, 0.1, Decimal("1.001"),
        Decimal("NaN"), Decimal("-5"), 0, -3, 10_000_001, [], {"amount": 1},
        Decimal("9E+999999"), Decimal("1E+8"), "\u0661", "\uff11", "1\n2",
    ],
)
def test_parse_amount_refuses(value):
    with pytest.raises(InvalidAmount) as info:
        money.parse_amount(value)
    assert info.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("euros", "bousols", "bonus"),
    [
        (2000, 2100, 100),     # 20 € → 21 B, the reference rate
        (4000, 4200, 200),     # 40 € → 42 B
        (1000, 1050, 50),      # 10 € → 10,50 B
        (100, 105, 5),         # 1 € → 1,05 B
        (1, 1, 0),             # 0,01 € → 0,01 B (0,0105 rounded down)
        (19, 19, 0),           # 0,19 € → 0,19 B (0,1995 rounded down)
        (20, 21, 1),           # 0,20 € → 0,21 B exactly
        (1001, 1051, 50),      # 10,01 € → 10,51 B (10,5105 rounded down)
        (3333, 3499, 166),     # 33,33 € → 34,99 B (34,9965 rounded down)
        (100_000_000, 105_000_000, 5_000_000),  # the largest amount
    ],
)
def test_exchange_arithmetic(euros, bousols, bonus):
    assert money.bousols_for_euros(euros) == (bousols, bonus)


@given(st.integers(min_value=1, max_value=money.MAX_CENTS))
def test_exchange_rounding_never_creates_or_loses_a_cent(euros):
    bousols, bonus = money.bousols_for_euros(euros)
    # Rounded down: never more than 21/20 of the euros, and less than one cent under.
    assert bousols * 20 <= euros * 21 < (bousols + 1) * 20
    # The euros and the bonus back the Bou'Sols exactly.
    assert euros + bonus == bousols
    assert 0 <= bonus <= euros // 20 + 1


@pytest.mark.parametrize(
    ("cents", "bp", "fee"),
    [(10_000, 500, 500), (1, 500, 1), (19, 500, 1), (20, 500, 1), (21, 500, 2),
     (12_345, 500, 618), (10_000, 0, 0), (10_000, 250, 250)],
)
def test_fee_is_rounded_up(cents, bp, fee):
    assert money.fee_for(cents, bp) == fee


@pytest.mark.parametrize(
    ("cents", "unit", "text"),
    [(123_450, "B", "1\u202f234,50\u00a0B"), (5, "€", "0,05\u00a0€"), (-2100, "B", "-21,00\u00a0B"),
     (100_000_000, "", "1\u202f000\u202f000,00")],
)
def test_format_fr(cents, unit, text):
    assert money.format_fr(cents, unit) == text


def test_format_plain():
    assert [money.format_plain(c) for c in (2100, 5, -1250, 0)] == ["21.00", "0.05", "-12.50",
                                                                   "0.00"]


@pytest.mark.parametrize(("ratio", "text"), [
    (None, "—"), (Fraction(1), "100,0 %"), (Fraction(2, 3), "66,7 %"),
    (Fraction(1, 3), "33,3 %"), (Fraction(9995, 10000), "100,0 %"), (Fraction(0), "0,0 %")])
def test_percent_is_exact_and_french(ratio, text):
    from bousol.web.formatting import fr_percent

    assert fr_percent(ratio) == text
