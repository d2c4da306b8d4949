"""The request and response models of the JSON API v1 (pydantic).

They validate the requests (``extra="forbid"``, strict types) and, through their JSON
schemas, make the OpenAPI description (:mod:`bousol.web.api.openapi`): one source.

Amounts in requests are a JSON string or number with at most two decimals, ``> 0`` and
at most ``1000000.00`` (:func:`bousol.ledger.kernel.money.parse_amount`; the body is parsed with
``parse_float=Decimal``, never a float). A valid amount is handed on as its plain form
(``"12.50"``). Amounts in responses are strings with two decimals.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from bousol.ledger.access import api_tokens
from bousol.ledger.ccas import voucher_codes
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import Filiere

# Exactly the strings parse_amount accepts in the canonical shape (no leading zero, no
# sign): > 0 and at most 1000000.00, with at most two decimals. "0", "0.00" and
# "9999999" do not match (the schema promises only what the API accepts).
AMOUNT_PATTERN = (r"^(?:[1-9][0-9]{0,5}(?:[.,][0-9]{1,2})?"
                  r"|0[.,](?:0[1-9]|[1-9][0-9]?)"
                  r"|1000000(?:[.,]00?)?)$")
PLAIN_AMOUNT_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"
PARTY_CODE_PATTERN = r"^[SPC]-[0-9]{6}$"
# No control characters (C0, DEL, C1): PostgreSQL refuses NUL, and none belongs in a memo.
PRINTABLE_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"
# Bidirectional controls (ALM, LRM, RLM, the embeddings, overrides and isolates) can make
# a memo or a label read otherwise on a page or a statement than what it holds
# ("Trojan Source"): refused in free text.
BIDI_CLASS = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
FREE_TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f" + BIDI_CLASS + "]*$"
_BIDI_RE = re.compile("[" + BIDI_CLASS + "]")
ID_MAX = 2**31 - 1
# A voucher code as printed, or without its dashes, in Crockford's alphabet. Its check
# character is beyond a pattern: a code of this shape with a wrong one is 422
# invalid_code (a typing error), told apart from an unknown one (404).
_CROCKFORD = "[0-9A-HJKMNP-TV-Z]"
VOUCHER_CODE_PATTERN = (f"^{_CROCKFORD}{{4}}(?:-?{_CROCKFORD}{{4}}){{3}}-?{_CROCKFORD}$")
VOUCHER_CODE_PARAM = {"type": "string", "pattern": VOUCHER_CODE_PATTERN,
                      "examples": [voucher_codes.display("7K3MQ9XD2HPTW4RB")]}


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
            # JSON numbers with decimals are accepted too (12.5), but a schema's
            # "multipleOf": 0.01 is a float test that clients (and fuzzers) apply to
            # binary floats: the schema names only whole numbers, which nobody misreads.
            {"type": "integer", "minimum": 1, "maximum": 1000000},
        ],
        "description": "A decimal amount, > 0, at most 1000000.00, at most two decimals: "
                       "a string (\"12.50\") or a JSON number (12, 12.5).",
        "examples": ["12.50"],
    }),
]


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise PydanticCustomError("invalid_input", "caractères non imprimables")
    return value


def _no_bidi(value: str) -> str:
    if _BIDI_RE.search(value):
        raise PydanticCustomError("invalid_input",
                                  "caractères de contrôle de direction du texte refusés")
    return value


def Text(max_length: int, *, min_length: int = 0, pattern: str = FREE_TEXT_PATTERN,
         bidi: bool = False):
    """A string of printable characters, without bidirectional controls unless ``bidi``
    (a type, named like one)."""
    checks = [AfterValidator(_printable)] + ([] if bidi else [AfterValidator(_no_bidi)])
    if bidi and pattern == FREE_TEXT_PATTERN:
        pattern = PRINTABLE_PATTERN
    return Annotated[str, Field(min_length=min_length, max_length=max_length, pattern=pattern),
                     *checks]


def _whole(value: Any) -> Any:
    # JSON Schema calls 23.0 an integer; the body is parsed with Decimal, never a float,
    # so a whole Decimal is that integer (23.5 stays a Decimal, refused by strict int).
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value() \
            and value.adjusted() < 12:
        return int(value)
    return value


def WholeNumber(ge: int, le: int):
    """An integer from ``ge`` to ``le``, a whole JSON number included (a type)."""
    return Annotated[int, BeforeValidator(_whole), Field(ge=ge, le=le),
                     WithJsonSchema({"type": "integer", "minimum": ge, "maximum": le})]


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


ScopeName = Literal[tuple(api_tokens.SCOPES)]  # type: ignore[valid-type]
# The longest lifetime a client may ask for; the config key API_TOKEN_TTL_DAYS lowers it
# (the OpenAPI document states the one in force).
TOKEN_MAX_DAYS = 30


class TokenIn(Request):
    username: Text(80, min_length=1)  # type: ignore[valid-type]
    # Never shown anywhere: any printable character, bidirectional controls included.
    password: Text(1024, min_length=1, bidi=True)  # type: ignore[valid-type]
    label: Text(100) | None = None  # type: ignore[valid-type]
    scopes: list[ScopeName] | None = Field(
        default=None, min_length=1, max_length=len(api_tokens.SCOPES),
        json_schema_extra={"uniqueItems": True},
        description="What the token may do; each must be allowed to the user's role "
                    "(else 422 invalid_scope). Default: everything the role may do.")
    expires_in_days: WholeNumber(1, 3660) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Lifetime in days, 1 to the maximum (30 by default). Default: the "
                    "maximum.")


class TokenOut(Response):
    token: str
    expires_at: Timestamp
    id: int = Field(description="The token's number (to revoke it: DELETE /tokens/{id}).")
    scopes: list[str] = Field(description="What the token may do.")


class TokenInfo(Response):
    id: int
    label: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None
    current: bool = Field(description="The token this request was made with.")
    scopes: list[str]


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


class ExchangePendingOut(Response):
    """An exchange above the thresholds: nothing moved yet (202); a second person
    approves it (``POST /exchange-approvals/{id}/approve``)."""

    status: Literal["pending_approval"]
    id: int = Field(description="The pending request's number (approval id).")
    party: str
    euros: PlainAmount
    bousols: PlainAmount  # what the exchange will credit once approved


class ExchangeApprovalOut(Response):
    id: int
    status: Literal["pending", "approved", "refused", "cancelled"]
    party: str
    euros: PlainAmount
    rule: Literal["operation", "day"]
    requested_by: str | None
    requested_at: Timestamp
    decided_by: str | None
    reason: str | None
    entry_id: int | None


class ExchangeApprovalList(Response):
    approvals: list[ExchangeApprovalOut]


# Starts with a visible character: a blank reason is no reason (the ledger trims it).
REASON_PATTERN = (r"^[^\s\u0000-\u001f\u007f-\u009f" + BIDI_CLASS
                  + r"][^\u0000-\u001f\u007f-\u009f" + BIDI_CLASS + "]*$")


class RefusalIn(Request):
    reason: Text(500, min_length=1, pattern=REASON_PATTERN)  # type: ignore[valid-type]


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
    beneficiary_ref: Text(40, min_length=1, pattern=r"^[^;,\"'<>\u0000-\u001f\u007f-\u009f"  # type: ignore[valid-type]
                          + BIDI_CLASS + "]*$")
    valid_until: IsoDate
    filieres: list[FiliereSlug] | None = Field(default=None, max_length=5)
    programme: WholeNumber(1, ID_MAX) | None = None  # type: ignore[valid-type]


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
