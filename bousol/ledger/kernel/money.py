"""Money at the edges: parsing amounts into integer cents and printing them back.

Inside the ledger every amount is an ``int`` of cents. ``Decimal`` is accepted at the
edges; ``float`` never is (0.1 + 0.2 is not 0.3, and a currency cannot live with that).
"""

from __future__ import annotations

import re
from decimal import Decimal

from bousol.ledger.kernel.errors import InvalidAmount

MAX_CENTS = 100_000_000  # 1 000 000,00: the largest amount one request may move
_AMOUNT_RE = re.compile(r"([0-9]{1,7})(?:[.,]([0-9]{1,2}))?")

# The exchange rate: 20 € buy 21 Bou'Sols.
RATE_EUR = 20
RATE_BSOL = 21


def parse_amount(value: object) -> int:
    """Return ``value`` as a positive number of cents, or raise ``InvalidAmount``.

    Accepts ``int`` (whole units: 5 is 5,00, not 5 cents), ``Decimal`` and strings
    such as ``"12.50"``, ``"12,50"``, ``"12"`` (ASCII digits only);
    refuses floats, booleans, zero, negatives, more than two decimals, and anything
    above ``MAX_CENTS``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise InvalidAmount()
    if isinstance(value, int):
        cents = value * 100
    elif isinstance(value, Decimal):
        if (not value.is_finite() or value.as_tuple().exponent < -2  # type: ignore[operator]
                or value.adjusted() > 7):  # checked before multiplying: 9E+999999 overflows
            raise InvalidAmount()
        cents = int(value * 100)
    elif isinstance(value, str):
        match = _AMOUNT_RE.fullmatch(value.strip().replace("\u00a0", "").replace(" ", ""))
        if not match:
            raise InvalidAmount()
        units, decimals = match.group(1), (match.group(2) or "").ljust(2, "0")
        cents = int(units) * 100 + int(decimals)
    else:
        raise InvalidAmount()
    if cents <= 0 or cents > MAX_CENTS:
        raise InvalidAmount()
    return cents


def format_plain(cents: int) -> str:
    """Machine form: ``-1234.50`` (the API's decimal strings)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def format_fr(cents: int, unit: str = "") -> str:
    """French form: ``1 234,50 B`` (narrow no-break space between thousands)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    units = f"{cents // 100:,}".replace(",", "\u202f")
    text = f"{sign}{units},{cents % 100:02d}"
    return f"{text}\u00a0{unit}" if unit else text


def bousols_for_euros(euro_cents: int) -> tuple[int, int]:
    """Return ``(bousol_cents, bonus_cents)`` for ``euro_cents`` exchanged at 20 € = 21 B.

    Rounding rule: the Bou'Sols are rounded *down* to the cent (in the issuer's
    favour, as the reference ledgers do), so no sub-cent is ever created. The bonus is
    what the rate adds on top of the euros, and the bonus fund pays exactly that much
    into the reserve: every Bou'Sol issued is backed by one euro, to the cent.
    """
    bousol_cents = euro_cents * RATE_BSOL // RATE_EUR
    return bousol_cents, bousol_cents - euro_cents


def fee_for(cents: int, fee_bp: int) -> int:
    """Fee in cents for ``fee_bp`` basis points (500 = 5 %), rounded *up* to the cent.

    Up, because the fee is the association's and a rounding must favour the issuer.
    """
    return -(-cents * fee_bp // 10_000)
