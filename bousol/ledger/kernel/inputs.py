"""What the rules accept from outside, cleaned in one place: free text and memos, party
codes, database ids, e-mail addresses and phone numbers. No Flask here.

Each rule raises the domain's own error with the words its people already read: the
cleaners grew one per domain with slightly different rules (whether a blank value is
missing or refused, whether line breaks are allowed, which words the message uses), and
those differences are kept as parameters here, not unified behind the users' backs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, TypeGuard, overload

from bousol.ledger.kernel.errors import InvalidInput, UnknownParty

# ---------------------------------------------------------------- text

MEMO_MAX = 500


@dataclass(frozen=True)
class TextMessages:
    """The words of each refusal; ``{label}``, ``{limit}`` (the length once trimmed) and
    ``{raw_limit}`` (the length as typed) are filled in."""

    required: str = "{label} : obligatoire."
    not_text: str = "{label} : texte attendu."
    unprintable: str = "{label} : caractères non imprimables."
    too_long: str = "{label} : {limit} caractères au plus."
    raw_too_long: str = "{label} : {raw_limit} caractères au plus."


# The forms' words: the field's label, then what is wrong with it.
LABELLED = TextMessages()
_MEMO_TOO_LONG = "Libellé trop long (au plus {raw_limit} caractères)."
# A memo's words (the journal's libellé), also those of the rules built on it (the CCAS's
# names and references, the desk's contact details): anything not text is "too long".
MEMO_WORDS = TextMessages(
    not_text=_MEMO_TOO_LONG,
    raw_too_long=_MEMO_TOO_LONG,
    unprintable="Le libellé contient des caractères non imprimables.",
)


def _unprintable(value: str, allowed: str) -> bool:
    # Control characters (NUL is refused by PostgreSQL and kept by SQLite, the others
    # garble a page or a CSV) and lone surrogates (they cannot be written as UTF-8).
    return any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in value)


@overload
def text(value: object, limit: int | None, label: str = "", *, required: Literal[True],
         field: str | None = None, multiline: bool = False, blank_first: bool = True,
         raw_limit: int | None = None, messages: TextMessages = LABELLED) -> str: ...


@overload
def text(value: object, limit: int | None, label: str = "", *, required: bool = False,
         field: str | None = None, multiline: bool = False, blank_first: bool = True,
         raw_limit: int | None = None, messages: TextMessages = LABELLED) -> str | None: ...


def text(value: object, limit: int | None, label: str = "", *, required: bool = False,
         field: str | None = None, multiline: bool = False, blank_first: bool = True,
         raw_limit: int | None = None, messages: TextMessages = LABELLED) -> str | None:
    """Free text, trimmed, at most ``limit`` characters once trimmed (None: no limit);
    None when missing or blank, or ``{label} : obligatoire.`` when ``required``.

    Refused with :class:`InvalidInput` (``details["field"]`` is ``field`` when given):
    anything but a string, control characters and lone surrogates (line breaks are kept,
    as ``\\n``, when ``multiline``), more than ``raw_limit`` characters as typed (before
    trimming), more than ``limit`` once trimmed.

    ``blank_first``: a value of spaces only, tabs and line breaks included, is missing
    (checked before its characters); False checks the characters first, so a lone tab
    or line break is refused as unprintable (the memo's and the applications' rule).
    """
    words = {"label": label, "limit": limit, "raw_limit": raw_limit}

    def refuse(template: str) -> InvalidInput:
        message = template.format(**words)
        return InvalidInput(message) if field is None else InvalidInput(message, field=field)

    cleaned = ""
    if value is not None and not (blank_first and isinstance(value, str) and not value.strip()):
        if not isinstance(value, str):
            raise refuse(messages.not_text)
        if raw_limit is not None and len(value) > raw_limit:
            raise refuse(messages.raw_too_long)
        if multiline:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        if _unprintable(value, "\n" if multiline else ""):
            raise refuse(messages.unprintable)
        cleaned = value.strip()
    if not cleaned:
        if required:
            raise refuse(messages.required)
        return None
    if limit is not None and len(cleaned) > limit:
        raise refuse(messages.too_long)
    return cleaned


def memo(value: object, *, limit: int = MEMO_MAX) -> str | None:
    """A journal entry's libellé (and the reasons and comments cleaned the same way):
    trimmed, None when blank, one line of printable text of at most ``limit``
    characters as typed."""
    return text(value, None, "Libellé", blank_first=False, raw_limit=limit,
                messages=MEMO_WORDS)


# ---------------------------------------------------------------- party codes

# The letters of the parties' codes: soliste, prestataire, CCAS, bank, association.
PARTY_PREFIXES = "SPCBA"
# (Local partners without an account, the association's ``partners``, have ``L-``.)
_CODE_RE = re.compile(r"([A-Z])-[0-9]{6}")
# What people type for a party code: "P 000002", "p-000002", "P000002", "P – 000002".
# Spaces (also no-break ones) and dashes of any kind are ignored, as the forms' help says;
# a letter and six digits make the code.
_CODE_NOISE = re.compile(r"[\s\u00a0\u202f\-\u2010-\u2015\u2212]+")
_TYPED_CODE = re.compile(r"([A-Z])([0-9]{6})")


def is_party_code(value: object, prefixes: str = PARTY_PREFIXES) -> TypeGuard[str]:
    """``value`` is a code as stored (``S-000123``) whose letter is one of ``prefixes``."""
    if not isinstance(value, str):
        return False
    match = _CODE_RE.fullmatch(value)
    return match is not None and match.group(1) in prefixes


def party_code(value: object, prefixes: str = PARTY_PREFIXES) -> str:
    """A public party code (``S-000123``); anything else names nobody (``unknown_party``)."""
    if not is_party_code(value, prefixes):
        raise UnknownParty(f"Aucun adhérent ne porte le code {str(value)[:20]!r}.")
    return value


def normalise_party_code(value: object) -> str:
    """A code as people type it, in its stored form (``p 000002`` → ``P-000002``);
    anything else trimmed and upper-cased, for the caller's usual "unknown party"
    answer (not a string: the empty string)."""
    if not isinstance(value, str):
        return ""
    typed = value.strip().upper()
    match = _TYPED_CODE.fullmatch(_CODE_NOISE.sub("", typed))
    return f"{match.group(1)}-{match.group(2)}" if match else typed


# ---------------------------------------------------------------- database ids

INT_ID_MAX = 2**31 - 1  # an INTEGER primary key (most tables)
BIGINT_ID_MAX = 2**63 - 1  # a BIGINT one (the journal's entries)


def is_database_id(value: object, maximum: int = INT_ID_MAX) -> TypeGuard[int]:
    """A row's id as a rule takes it: an int (not a bool), from 1 to ``maximum``; a
    larger one would overflow the database's column type rather than find nothing."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= maximum


def database_id(value: object, error: BaseException | type[BaseException], *,
                maximum: int = INT_ID_MAX) -> int:
    """``value`` if :func:`is_database_id`, else ``error`` raised (the domain's "unknown
    thing": a wrong id names nothing)."""
    if not is_database_id(value, maximum):
        raise error
    return value


# ---------------------------------------------------------------- contact details

EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s]{2,}")
_PHONE_NOISE = re.compile(r"[\s.\-()]")
_PHONE_RE = re.compile(r"\+?[0-9]{6,15}")


def email(value: str | None, *, message: str = "Adresse électronique invalide.",
          field: str | None = None) -> str | None:
    """An e-mail address already cleaned as text (None stays None), or ``message``."""
    if value is not None and not EMAIL_RE.fullmatch(value):
        raise InvalidInput(message) if field is None else InvalidInput(message, field=field)
    return value


def phone(value: str | None, *, field: str | None = None) -> str | None:
    """Digits only, with a leading + kept (``06 12 34 56 78`` → ``0612345678``); None
    when missing or blank."""
    if value is None or not value.strip():
        return None
    digits = _PHONE_NOISE.sub("", value.strip())
    if not _PHONE_RE.fullmatch(digits):
        message = "Numéro de téléphone invalide (6 à 15 chiffres)."
        raise InvalidInput(message) if field is None else InvalidInput(message, field=field)
    return digits
