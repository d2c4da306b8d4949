"""The request and response models of the JSON API v1 (pydantic).

They validate the requests (``extra="forbid"``, strict types) and, through their JSON
schemas, make the OpenAPI description (:mod:`bousol.web.api.openapi`): one source.

Amounts in requests are a JSON string or number with at most two decimals, ``> 0`` and
at most ``1000000.00`` (:func:`bousol.money.parse_amount`; the body is parsed with
``parse_float=Decimal``, never a float). A valid amount is handed on as its plain form
(``"12.50"``). Amounts in responses are strings with two decimals.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from bousol import money
from bousol.ledger.errors import DomainError
from bousol.ledger.models import Filiere

AMOUNT_PATTERN = r"^[0-9]{1,7}([.,][0-9]{1,2})?$"
PLAIN_AMOUNT_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
PARTY_CODE_PATTERN = r"^[SPC]-[0-9]{6}$"
# No control characters (C0, DEL, C1): PostgreSQL refuses NUL, and none belongs in a memo.
PRINTABLE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
ID_MAX = 2**31 - 1


def _amount(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PydanticCustomError("invalid_amount", "un montant : une chaîne ou un nombre")
    try:
        return money.format_plain(money.parse_amount(value))
    except DomainError as error:
        raise PydanticCustomError("invalid_amount", error.message) from None


Amount = Annotated[
    Any,
    PlainValidator(_amount),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "pattern": AMOUNT_PATTERN},
            {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
        ],
        "description": "A decimal amount, > 0, at most 1000000.00, at most two decimals: "
                       "a string (\"12.50\") or a JSON number.",
        "examples": ["12.50"],
    }),
]


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise PydanticCustomError("invalid_input", "caractères non imprimables")
    return value


def Text(max_length: int, *, min_length: int = 0, pattern: str = PRINTABLE_PATTERN):
    """A string of printable characters (a type, named like one)."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=pattern),
                     AfterValidator(_printable)]


def _date(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise PydanticCustomError("invalid_date", "une date AAAA-MM-JJ")
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise PydanticCustomError("invalid_date", "une date AAAA-MM-JJ") from None


IsoDate = Annotated[
    Any, PlainValidator(_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-12-31"]}),
]
PartyCode = Annotated[str, Field(pattern=PARTY_CODE_PATTERN, examples=["P-000045"])]
PlainAmount = Annotated[str, Field(pattern=PLAIN_AMOUNT_PATTERN, examples=["21.00"])]
FiliereSlug = Literal[tuple(f.value for f in Filiere)]  # type: ignore[valid-type]
Timestamp = Annotated[str, Field(description="ISO-8601, UTC",
                                 examples=["2026-11-05T14:03:00+00:00"])]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- errors


class ErrorBody(Response):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["insufficient_funds"])
    message: str = Field(description="Human readable, in French.")


class Error(Response):
    """Every error of the API: ``{"error": {"code", "message"}}``."""

    error: ErrorBody


# ---------------------------------------------------------------- tokens


class TokenIn(Request):
    username: Text(80, min_length=1)  # type: ignore[valid-type]
    password: Text(1024, min_length=1)  # type: ignore[valid-type]
    label: Text(100) | None = None  # type: ignore[valid-type]


class TokenOut(Response):
    token: str
    expires_at: Timestamp
    id: int = Field(description="The token's number (to revoke it: DELETE /tokens/{id}).")


class TokenInfo(Response):
    id: int
    label: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None
    current: bool = Field(description="The token this request was made with.")


class TokenList(Response):
    tokens: list[TokenInfo]


# ---------------------------------------------------------------- me


class PartyOut(Response):
    code: str
    kind: Literal["soliste", "prestataire", "ccas", "bank", "association"]
    name: str


class Balances(Response):
    BSOL: PlainAmount
    EUR: PlainAmount


class MeOut(Response):
    username: str
    role: Literal["admin", "bank", "soliste", "prestataire", "ccas"]
    party: PartyOut | None
    balances: Balances


class EntryOut(Response):
    id: int
    kind: str
    amount: PlainAmount = Field(description="Signed, from the caller's side: + in, − out.")
    currency: Literal["BSOL", "EUR"]
    counterparty: str | None = Field(description="The other member's code; null: the bank.")
    counterparty_name: str | None
    created_at: Timestamp
    memo: str | None


class EntriesOut(Response):
    entries: list[EntryOut]
    next: str | None = Field(description="Cursor of the next (older) page: pass it as "
                                         "?before=…; null on the last page.")


# ---------------------------------------------------------------- money


class ExchangeIn(Request):
    party: PartyCode
    euros: Amount


class ExchangeOut(Response):
    entry_id: int
    euros: PlainAmount
    bousols: PlainAmount
    balance: PlainAmount


class PaymentIn(Request):
    payee: PartyCode
    amount: Amount
    memo: Text(500) | None = None  # type: ignore[valid-type]


class PaymentOut(Response):
    entry_id: int
    amount: PlainAmount
    payee: str
    balance: PlainAmount


class PaymentRequestIn(Request):
    amount: Amount
    memo: Text(140) | None = None  # type: ignore[valid-type]


class PaymentRequestOut(Response):
    id: int
    amount: PlainAmount
    status: Literal["open", "paid", "declined", "cancelled", "expired"]
    pay_url: str
    qr_url: str
    short_code: str
    expires_at: Timestamp


class Empty(Request):
    """No field (``{}``; an empty body is read as ``{}``)."""


class ReconversionIn(Request):
    prestataire: PartyCode
    bousols: Amount


class ReconversionOut(Response):
    entry_id: int
    bousols: PlainAmount
    fee: PlainAmount
    euros: PlainAmount
    balance: PlainAmount


# ---------------------------------------------------------------- vouchers


class VoucherIn(Request):
    amount: Amount
    beneficiary_ref: Text(40, min_length=1, pattern=r"^[^;,\"'<>\u0000-\u001f\u007f-\u009f]*$")  # type: ignore[valid-type]
    valid_until: IsoDate
    filieres: list[FiliereSlug] | None = Field(default=None, max_length=5)
    programme: int | None = Field(default=None, ge=1, le=ID_MAX)


VoucherStatus = Literal["open", "redeemed", "expired", "cancelled"]


class VoucherGranted(Response):
    code: str
    amount: PlainAmount
    remaining: PlainAmount
    status: VoucherStatus
    valid_until: str = Field(json_schema_extra={"format": "date"})
    qr_url: str


class VoucherOut(Response):
    code: str
    amount: PlainAmount
    remaining: PlainAmount
    status: VoucherStatus
    valid_until: str = Field(json_schema_extra={"format": "date"})
    filieres: list[str] | None = Field(description="null: every filière")


class RedemptionIn(Request):
    amount: Amount


class RedemptionOut(Response):
    entry_id: int
    amount: PlainAmount
    remaining: PlainAmount
    status: VoucherStatus


# ---------------------------------------------------------------- the ledger


class SummaryOut(Response):
    bsol_in_circulation: PlainAmount
    bsol_electronic: PlainAmount
    bsol_notes: PlainAmount
    bsol_vouchers: PlainAmount
    eur_reserve: PlainAmount
    coverage_ratio: str | None = Field(
        pattern=r"^[0-9]+\.[0-9]{4}$",
        description="Euros of backing (reserve and desk cash) per Bou'Sol in circulation, "
                    "4 decimals, rounded down; null while nothing circulates.")
