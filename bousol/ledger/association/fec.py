"""The FEC (Fichier des Écritures Comptables) of a period, the mapping of ledger accounts
to the association's chart of accounts, and a checker of the format. No Flask here.

docs/fec.md explains the choices; in short:

- every posting of every entry made in the period (Europe/Paris days) is one line;
  Bou'Sols count at par (1 B = 1 €) in Debit/Credit and also carry Montantdevise and
  Idevise ``BSOL``; a posting into the account (amount > 0) is a debit;
- ledger accounts are grouped (``system:eur_reserve``, ``party:soliste:BSOL:main``…);
  each group has a default account of the PCG here (``GROUPS``), which a row of
  ``fec_mappings`` (edited by the treasurer) overrides;
- the journal follows the entry's kind (``KIND_JOURNALS``); a reversal goes to the
  journal of the entry it reverses; entries are numbered per journal, in chronological
  order, ``CH000001``…;
- ``check(text)`` lists what breaks the format's rules (it is run on every file the
  tests make, and proved to catch broken ones).

Amounts are integer cents throughout, written with a decimal comma.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TextIO

from sqlalchemy import Connection, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from bousol.ledger.association.models import FecMapping
from bousol.ledger.books.models import Account, Entry, Party, PartyKind, Posting, User
from bousol.ledger.books.queries import KIND_LABELS
from bousol.ledger.books.statements import paris_bounds, parse_date
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.clock import PARIS, as_utc
from bousol.ledger.kernel.errors import DomainError, InvalidDate, InvalidInput
from bousol.ledger.kernel.models import utcnow
from bousol.ledger.kernel.siret import luhn_ok
from bousol.ledger.kernel.text import N_
from bousol.ledger.kernel.uow import UnitOfWork

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
parties_t, mappings_t, users_t = Party.__table__, FecMapping.__table__, User.__table__


class FecNotConfigured(DomainError):
    """No (valid) SIREN: the file's name and the law need the association's."""

    code = "fec_not_configured"
    http_status = 409
    default_message = (
        "Le SIREN de l'association (ASSOCIATION_SIREN) n'est pas configuré : "
        "impossible de produire le FEC."
    )


# ---------------------------------------------------------------- the format

HEADER = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
    "CompAuxNum", "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit",
    "EcritureLet", "DateLet", "ValidDate", "Montantdevise", "Idevise",
)
MANDATORY = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib",
    "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "ValidDate",
)
SEPARATOR = "\t"
NEWLINE = "\r\n"  # CRLF: what the accountants' (Windows) tools expect; check() takes LF too
MAX_PERIOD_YEARS = 2  # a first financial year may last up to 24 months

# ---------------------------------------------------------------- journals

# Code → JournalLib (the file is French, whatever the interface's language).
JOURNALS: dict[str, str] = {
    "CH": N_("Change"),
    "RC": N_("Reconversions"),
    "PA": N_("Paiements"),
    "BO": N_("Bons d'aide"),
    "CO": N_("Cotisations"),
    "BI": N_("Billets"),
    "BQ": N_("Banque"),
    "OD": N_("Opérations diverses"),
}

# Every entry kind the ledger knows → its journal. A test fails when a kind (a row of
# entry_kinds, a key of queries.KIND_LABELS) has none: a new kind must be placed here.
KIND_JOURNALS: dict[str, str] = {
    "exchange": "CH",
    "reconversion": "RC",
    "payment": "PA",
    "refund": "PA",
    "voucher_grant": "BO",
    "voucher_redemption": "BO",
    "voucher_expiry": "BO",
    "voucher_cancellation": "BO",
    "membership_fee": "CO",
    "note_deposit": "BI",
    "note_reactivation": "BI",
    "subsidy": "BQ",
    "cash_deposit": "BQ",
    "payout": "BQ",
    "cash_discrepancy": "OD",
    # A reversal is booked in the journal of the entry it reverses (the usual practice
    # for a contre-passation); OD only if that entry's kind were unknown.
    "reversal": "OD",
}


def journal_of(kind: str, reversed_kind: str | None = None) -> str:
    if kind == "reversal" and reversed_kind in KIND_JOURNALS and reversed_kind != "reversal":
        return KIND_JOURNALS[reversed_kind]
    return KIND_JOURNALS.get(kind, "OD")


# ---------------------------------------------------------------- account groups


@dataclass(frozen=True)
class Group:
    """A group of ledger accounts that maps to one account of the chart."""

    key: str
    label: str  # what the group is in the ledger (French, N_)
    currency: str
    number: str  # the default account number (PCG)
    account_label: str  # the default account label


GROUPS: tuple[Group, ...] = (
    # The bank's and the association's accounts (one group per system account).
    Group("system:eur_reserve", N_("Fonds de garantie en euros (réserve)"), "EUR",
          "512100", "Banque - fonds de garantie Bou'Sol"),
    Group("system:desk_cash", N_("Caisse du comptoir (espèces et chèques)"), "EUR",
          "530000", "Caisse du comptoir"),
    Group("system:bonus_fund", N_("Fonds de bonification (subventions des partenaires)"), "EUR",
          "512200", "Banque - fonds de bonification"),
    Group("system:fees_income", N_("Produits de l'association (commissions, cotisations)"),
          "EUR", "512300", "Trésorerie de l'association - produits encaissés"),
    Group("system:cash_discrepancy", N_("Écarts de caisse"), "EUR",
          "658000", "Écarts de caisse"),
    Group("system:eur_outside", N_("Euros échangés avec l'extérieur"), "EUR",
          "471000", "Euros reçus ou versés hors du système, à imputer"),
    Group("system:issuance", N_("Émission (moins les Bou'Sols en circulation)"), "BSOL",
          "467100", "Bou'Sols émis"),
    Group("system:notes_circulation", N_("Billets en circulation"), "BSOL",
          "467110", "Bou'Sols en billets"),
    Group("system:vouchers_outstanding", N_("Bons d'aide en circulation"), "BSOL",
          "467120", "Bons d'aide en circulation"),
    # Members' accounts, by kind, currency and purpose (the party is the auxiliary account).
    Group("party:soliste:BSOL:main", N_("Comptes Bou'Sol des solistes"), "BSOL",
          "467200", "Bou'Sols des solistes"),
    Group("party:prestataire:BSOL:main", N_("Comptes Bou'Sol des prestataires"), "BSOL",
          "467300", "Bou'Sols des prestataires"),
    Group("party:ccas:BSOL:main", N_("Compte Bou'Sol du CCAS"), "BSOL",
          "467400", "Bou'Sols du CCAS"),
    Group("party:ccas:BSOL:programme", N_("Comptes des programmes d'aide du CCAS"), "BSOL",
          "467410", "Bou'Sols des programmes d'aide"),
    Group("party:prestataire:EUR:main", N_("Euros dus aux prestataires (reconversions)"),
          "EUR", "467500", "Euros de reconversion dus aux prestataires"),
    Group("party:soliste:EUR:main", N_("Comptes en euros des solistes"), "EUR",
          "467600", "Euros des solistes"),
    Group("party:ccas:EUR:main", N_("Compte en euros du CCAS"), "EUR",
          "467700", "Euros du CCAS"),
)
GROUP_BY_KEY: dict[str, Group] = {group.key: group for group in GROUPS}
# An account of no known group (a purpose added without updating GROUPS) still exports,
# on a suspense account the accountant will see.
FALLBACK_NUMBER = "471900"
FALLBACK_LABEL = "Compte d'attente - groupe non répertorié"


def group_key(system_code: str | None, party_kind: str | None, currency: str,
              purpose: str) -> str:
    """The mapping key of a ledger account: ``system:<code>`` for a system account,
    ``party:<kind>:<currency>:<purpose>`` for a member's (``programme:12`` → ``programme``)."""
    if system_code:
        return f"system:{system_code}"
    return f"party:{party_kind}:{currency}:{purpose.split(':', 1)[0]}"


# ---------------------------------------------------------------- the mapping

NUMBER_RE = re.compile(r"[0-9]{3}[0-9A-Z]{0,17}")
LABEL_MAX = 200


@dataclass(frozen=True)
class Mapping:
    key: str
    label: str  # the group, in the ledger's words
    currency: str
    default_number: str
    default_label: str
    number: str  # in use
    account_label: str  # in use
    changed: bool  # differs from the default
    updated_at: dt.datetime | None = None
    updated_by: str | None = None


def _overrides(conn: Connection) -> dict:
    rows = conn.execute(
        select(mappings_t.c.ledger_key, mappings_t.c.account_number,
               mappings_t.c.account_label, mappings_t.c.updated_at, users_t.c.username)
        .outerjoin(users_t, users_t.c.id == mappings_t.c.updated_by_user_id)
    ).all()
    return {row.ledger_key: row for row in rows}


def mappings(conn: Connection) -> list[Mapping]:
    """Every group with the account it maps to (the treasurer's, or the default)."""
    found = _overrides(conn)
    views = []
    for group in GROUPS:
        row = found.get(group.key)
        number = row.account_number if row else group.number
        label = row.account_label if row else group.account_label
        views.append(Mapping(
            group.key, group.label, group.currency, group.number, group.account_label,
            number, label, (number, label) != (group.number, group.account_label),
            row.updated_at if row else None, row.username if row else None))
    return views


def chart(conn: Connection) -> dict[str, tuple[str, str]]:
    """Group key → (account number, account label) in use."""
    return {m.key: (m.number, m.account_label) for m in mappings(conn)}


def _known_key(ledger_key: object) -> str:
    if not isinstance(ledger_key, str) or ledger_key.strip() not in GROUP_BY_KEY:
        raise InvalidInput("Groupe de comptes inconnu.", field="ledger_key")
    return ledger_key.strip()


def validate_number(value: object) -> str:
    """An account number: 3 to 20 characters, digits and capital letters, the first three
    digits (the PCG class, chapter, account). Spaces around are dropped, letters
    upper-cased."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput("Numéro de compte obligatoire.", field="account_number")
    # ASCII checked before upper-casing: "ß".upper() is "SS".
    if not text.isascii() or not NUMBER_RE.fullmatch(text := text.upper()):
        raise InvalidInput(
            "Numéro de compte invalide : de 3 à 20 caractères, chiffres et lettres "
            "majuscules, commençant par 3 chiffres du plan comptable (ex. 512100).",
            field="account_number")
    return text


def validate_label(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput("Intitulé du compte obligatoire.", field="account_label")
    if len(text) > LABEL_MAX:
        raise InvalidInput(f"Intitulé trop long ({LABEL_MAX} caractères au plus).",
                           field="account_label")
    # Control characters, line and paragraph separators, lone surrogates.
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text):
        raise InvalidInput("L'intitulé contient des caractères non imprimables "
                           "(tabulation, retour à la ligne…).", field="account_label")
    return text


def set_mapping(uow: UnitOfWork, actor: Actor, ledger_key: object, account_number: object,
                account_label: object) -> Mapping:
    """The treasurer maps a group of ledger accounts to an account of the chart (admin)."""
    actor.require(Role.ADMIN)
    key = _known_key(ledger_key)
    number = validate_number(account_number)
    label = validate_label(account_label)
    values = {"ledger_key": key, "account_number": number, "account_label": label,
              "updated_at": utcnow(), "updated_by_user_id": actor.user_id}
    with uow:
        conn = uow.conn
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(mappings_t).values(**values)
        # Upsert: two admins saving at once both succeed, the last one wins.
        conn.execute(statement.on_conflict_do_update(
            index_elements=[mappings_t.c.ledger_key],
            set_={name: statement.excluded[name] for name in
                  ("account_number", "account_label", "updated_at", "updated_by_user_id")}))
        uow.commit()
    group = GROUP_BY_KEY[key]
    return Mapping(key, group.label, group.currency, group.number, group.account_label,
                   number, label, (number, label) != (group.number, group.account_label),
                   values["updated_at"], actor.username)


def reset_mapping(uow: UnitOfWork, actor: Actor, ledger_key: object) -> bool:
    """Back to the default account for this group; False if it already used it."""
    actor.require(Role.ADMIN)
    key = _known_key(ledger_key)
    with uow:
        deleted = uow.conn.execute(
            delete(mappings_t).where(mappings_t.c.ledger_key == key)).rowcount
        uow.commit()
    return bool(deleted)


# ---------------------------------------------------------------- the period and the name


@dataclass(frozen=True)
class Period:
    start: dt.date  # Paris days, both included
    end: dt.date


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def parse_period(date_from: object, date_to: object) -> Period:
    """Two Paris days (``2026-01-31`` or ``31/01/2026``), in order, at most two years
    apart; else :class:`InvalidDate` with ``details["field"]`` (``date_from``,
    ``date_to``)."""
    found = {}
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        try:
            found[name] = parse_date(value)
        except InvalidDate as error:
            error.details["field"] = name
            raise
        if found[name] is None:
            raise InvalidDate("Date obligatoire (jj/mm/aaaa).", field=name)
    start, end = found["date_from"], found["date_to"]
    if end < start:
        raise InvalidDate("La fin de la période précède son début.", field="date_to")
    if end >= _years_later(start, MAX_PERIOD_YEARS):
        raise InvalidDate(f"Période trop longue : {MAX_PERIOD_YEARS} ans au plus "
                          "(un exercice dure au plus 24 mois).", field="date_to")
    return Period(start, end)


def check_siren(siren: object) -> str:
    """The association's SIREN (9 digits, Luhn key), or :class:`FecNotConfigured`."""
    text = re.sub(r"[\s\u00a0\u202f]", "", siren) if isinstance(siren, str) else ""
    if not text:
        raise FecNotConfigured()
    if not (len(text) == 9 and text.isascii() and text.isdigit() and luhn_ok(text)):
        raise FecNotConfigured("Le SIREN de l'association (ASSOCIATION_SIREN) est invalide : "
                               "9 chiffres dont le dernier est une clé de contrôle.")
    return text


def filename(siren: str, period: Period) -> str:
    """``<SIREN>FEC<YYYYMMDD>.txt``, dated by the period's last day (the closing date)."""
    return f"{siren}FEC{period.end:%Y%m%d}.txt"


# ---------------------------------------------------------------- writing the file

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r" {2,}")


def clean(text: str | None) -> str:
    """Text for one field: no tab, no line break, no control character."""
    if not text:
        return ""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def amount(cents: int) -> str:
    """``1234,50`` from integer cents (≥ 0): decimal comma, no thousands separator."""
    if cents < 0:
        raise ValueError("FEC amounts are written without sign")
    return f"{cents // 100},{cents % 100:02d}"


def aux_label(party_kind: str, code: str, name: str) -> str:
    """The auxiliary account's label: the party's name, except a soliste's (data
    minimisation: the accountant needs the code, not the consumer's name)."""
    if party_kind == PartyKind.SOLISTE:
        return f"Soliste {code}"
    return clean(name)


def entry_label(kind: str, memo: str | None, reverses_id: int | None,
                reversed_kind: str | None) -> str:
    label = KIND_LABELS.get(kind, kind)
    if reverses_id is not None:
        original = KIND_LABELS.get(reversed_kind or "", reversed_kind or "")
        label = f"Contre-passation de l'écriture E{reverses_id} ({original})"
        if memo == f"Contre-passation de l'écriture {reverses_id}":
            memo = None  # the default memo says nothing more
    if kind.startswith("voucher_") or (reversed_kind or "").startswith("voucher_"):
        # An aid voucher's memo carries its code, which leads to the beneficiary: the
        # association's accountant, outside the CCAS, gets the kind and the merchant's
        # account only (docs/vouchers.md, privacy). The CCAS's own pages keep the code.
        memo = None
    memo = clean(memo)
    if memo == label:
        memo = ""  # a memo that repeats the kind ("Bon d'aide attribué")
    return clean(f"{label} - {memo}" if memo else label)


BATCH_ENTRIES = 2000  # entries read per query (their postings come with them)
CHUNK_CHARS = 64 * 1024  # text handed to the HTTP response or the file at a time


def _batch(conn: Connection, start: dt.datetime | None, end: dt.datetime | None,
           after: tuple[dt.datetime, int] | None, size: int):
    """The postings of the next ``size`` entries of the period after ``after`` (keyset on
    ``(created_at, id)``, the file's order), in that order, each entry's postings together
    and in their order: a batch never cuts an entry in two."""
    batch = select(entries_t.c.id, entries_t.c.kind, entries_t.c.created_at,
                   entries_t.c.memo, entries_t.c.reverses_id)
    if start is not None:
        batch = batch.where(entries_t.c.created_at >= start)
    if end is not None:
        batch = batch.where(entries_t.c.created_at < end)
    if after is not None:
        at, entry_id = after
        # ``created_at >= at`` first, alone: the bound the index on created_at starts its
        # range scan from (with the OR only, each batch would scan from the period's start).
        batch = batch.where(entries_t.c.created_at >= at,
                            or_(entries_t.c.created_at > at, entries_t.c.id > entry_id))
    chosen = batch.order_by(entries_t.c.created_at, entries_t.c.id).limit(size).subquery("batch")
    original = entries_t.alias("original")
    query = (
        select(chosen.c.id.label("entry_id"), chosen.c.kind, chosen.c.created_at,
               chosen.c.memo, chosen.c.reverses_id,
               original.c.kind.label("reversed_kind"), postings_t.c.amount,
               postings_t.c.currency, accounts_t.c.system_code, accounts_t.c.purpose,
               parties_t.c.kind.label("party_kind"), parties_t.c.code.label("party_code"),
               parties_t.c.name.label("party_name"))
        .select_from(
            chosen.join(postings_t, postings_t.c.entry_id == chosen.c.id)
            .join(accounts_t, accounts_t.c.id == postings_t.c.account_id)
            .outerjoin(parties_t, parties_t.c.id == accounts_t.c.party_id)
            .outerjoin(original, original.c.id == chosen.c.reverses_id))
        .order_by(chosen.c.created_at, chosen.c.id, postings_t.c.id)
    )
    return conn.execute(query).all()


def _rows(conn: Connection, period: Period, batch_entries: int | None = None):
    """The period's postings in chronological order of their entries (created_at, id),
    read by keyset batches of ``batch_entries`` entries: memory holds one batch, and the
    first lines come out after one short query, whatever the period's size."""
    size = batch_entries or BATCH_ENTRIES
    start, end = paris_bounds(period.start, period.end)
    after: tuple[dt.datetime, int] | None = None
    while True:
        rows = _batch(conn, start, end, after, size)
        yield from rows
        entries = len({row.entry_id for row in rows})
        if entries < size:
            return
        after = (rows[-1].created_at, rows[-1].entry_id)


ACCOUNT_CACHE = 50_000  # accounts whose columns are kept between lines (then forgotten)


def lines(conn: Connection, period: Period,
          batch_entries: int | None = None) -> Iterator[tuple[str, ...]]:
    """The file's records (18 fields each), header excluded, one batch of entries in
    memory at a time. The numbering per journal runs on across batches (a counter per
    journal), and an entry's lines all come from one batch, so each balances."""
    accounts = chart(conn)
    # An account's four columns, computed once (a merchant's account is on many lines);
    # bounded, so that memory stays flat however many accounts the period touches.
    columns: dict[tuple, tuple[str, str, str, str]] = {}
    numbers: dict[str, int] = {}
    current_entry = None
    journal = journal_label = number = date = label = piece = ""
    for (entry_id, kind, created_at, memo, reverses_id, reversed_kind, cents, currency,
         system_code, purpose, party_kind, party_code, party_name) in _rows(
            conn, period, batch_entries):
        if entry_id != current_entry:
            current_entry = entry_id
            journal = journal_of(kind, reversed_kind)
            journal_label = JOURNALS[journal]
            numbers[journal] = numbers.get(journal, 0) + 1
            number = f"{journal}{numbers[journal]:06d}"
            date = as_utc(created_at).astimezone(PARIS).strftime("%Y%m%d")
            label = entry_label(kind, memo, reverses_id, reversed_kind)
            piece = f"E{entry_id}"
        account = (system_code, party_kind, currency, purpose, party_code, party_name)
        found = columns.get(account)
        if found is None:
            key = group_key(system_code, party_kind, currency, purpose)
            account_number, account_label = accounts.get(
                key, (FALLBACK_NUMBER, f"{FALLBACK_LABEL} ({key})"))
            aux_number = aux_name = ""
            if not system_code and party_code:
                aux_number = party_code
                aux_name = aux_label(party_kind, party_code, party_name)
            if len(columns) >= ACCOUNT_CACHE:
                columns.clear()
            found = columns[account] = (account_number, clean(account_label), aux_number,
                                        aux_name)
        cents = int(cents)
        written = amount(cents if cents > 0 else -cents)
        bsol = currency == "BSOL"
        yield (
            journal, journal_label, number, date, found[0], found[1], found[2], found[3],
            piece, date, label, written if cents > 0 else "0,00",
            "0,00" if cents > 0 else written, "", "", date, written if bsol else "",
            "BSOL" if bsol else "",
        )


def stream(conn: Connection, period: Period, *, batch_entries: int | None = None,
           chunk_chars: int | None = None) -> Iterator[str]:
    """The file as text chunks of about ``chunk_chars`` characters: the header first (at
    once, before any entry is read), then the lines. Joined, the chunks are exactly the
    file :func:`write` and :func:`export_text` make. The caller keeps ``conn`` open (one
    read-only snapshot) until the last chunk."""
    limit = chunk_chars or CHUNK_CHARS
    yield SEPARATOR.join(HEADER) + NEWLINE
    parts: list[str] = []
    size = 0
    for record in lines(conn, period, batch_entries):
        line = SEPARATOR.join(record) + NEWLINE
        parts.append(line)
        size += len(line)
        if size >= limit:
            yield "".join(parts)
            parts, size = [], 0
    if parts:
        yield "".join(parts)


def write(conn: Connection, period: Period, out: TextIO, *,
          batch_entries: int | None = None,
          progress: Callable[[int], None] | None = None) -> int:
    """Write the FEC of the period to ``out`` (a text stream opened with
    ``newline=""``); return the number of lines after the header. ``progress(lines)``
    is called after each chunk (a background job's heartbeat)."""
    count = -1  # the header is no line of the file's count
    for chunk in stream(conn, period, batch_entries=batch_entries):
        out.write(chunk)
        count += chunk.count(NEWLINE)
        if progress is not None:
            progress(count)
    return count


def export_text(conn: Connection, period: Period, *, batch_entries: int | None = None) -> str:
    buffer = io.StringIO(newline="")
    write(conn, period, buffer, batch_entries=batch_entries)
    return buffer.getvalue()


# ---------------------------------------------------------------- checking a file

_DATE_RE = re.compile(r"[0-9]{8}")
_AMOUNT_RE = re.compile(r"([0-9]+),([0-9]{2})")
_CURRENCY_RE = re.compile(r"[A-Z]{3,8}")
_NUMBERED_RE = re.compile(r"(.*?)([0-9]+)")
MAX_PROBLEMS = 200


def _valid_date(text: str) -> bool:
    if not _DATE_RE.fullmatch(text):
        return False
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _cents(text: str) -> int | None:
    match = _AMOUNT_RE.fullmatch(text)
    return int(match.group(1)) * 100 + int(match.group(2)) if match else None


@dataclass
class _Written:
    """One entry as read back: (journal, number), where its lines are, what it sums."""

    journal: str
    number: str
    first_line: int
    date: str
    valid: str
    piece: str
    debit: int = 0
    credit: int = 0
    count: int = 0
    broken: bool = False


def check(text: str) -> list[str]:
    """The problems found in a FEC file, against the format's rules (LPF A47 A-1):
    header of the 18 columns in order, tab-separated, 18 fields a line, the mandatory
    fields filled, dates YYYYMMDD, amounts with a decimal comma, CompteNum starting with
    three digits, each entry balanced, entries numbered in a continuous sequence per
    journal and in chronological order. An empty list: the file passes."""
    problems: list[str] = []

    def problem(message: str) -> None:
        problems.append(message)

    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        return ["fichier vide : l'en-tête des 18 colonnes manque"]
    crlf = text.split("\n", 1)[0].endswith("\r")
    open_end = not text.endswith("\n")  # a last line without its end: tolerated
    records = text.split("\n")
    if records[-1] == "":
        records.pop()  # after the last line's end
    rows: list[tuple[int, list[str]]] = []
    for index, raw in enumerate(records, start=1):
        if crlf:
            if not raw.endswith("\r") and not (open_end and index == len(records)):
                problem(f"ligne {index} : fins de ligne mélangées (CRLF attendu)")
            raw = raw.removesuffix("\r")
        if "\r" in raw:
            problem(f"ligne {index} : retour chariot dans un champ")
        rows.append((index, raw.split(SEPARATOR)))

    header = rows[0][1]
    if len(header) == 1 and "|" in header[0]:
        problem("en-tête : séparateur attendu : tabulation (trouvé : |)")
    elif tuple(header) != HEADER:
        missing = [name for name in HEADER if name not in header]
        extra = [name for name in header if name not in HEADER]
        if missing:
            problem(f"en-tête : colonnes manquantes : {', '.join(missing)}")
        if extra:
            problem(f"en-tête : colonnes inconnues : {', '.join(extra)}")
        if not missing and not extra:
            problem("en-tête : colonnes dans le mauvais ordre "
                    f"(attendu : {', '.join(HEADER)})")
    position = {name: i for i, name in enumerate(HEADER)}

    entries: dict[tuple[str, str], _Written] = {}
    order: list[_Written] = []
    journal_labels: dict[str, str] = {}
    previous_key: tuple[str, str] | None = None
    for index, fields in rows[1:]:
        if len(problems) >= MAX_PROBLEMS:
            break
        where = f"ligne {index}"
        if fields == [""]:
            problem(f"{where} : ligne vide")
            continue
        if len(fields) != len(HEADER):
            problem(f"{where} : {len(fields)} champs au lieu de {len(HEADER)}")
            previous_key = None
            continue
        value = {name: fields[i] for name, i in position.items()}
        for name in MANDATORY:
            if not value[name].strip():
                problem(f"{where} : {name} obligatoire, vide")
        for name in ("EcritureDate", "PieceDate", "ValidDate"):
            if value[name] and not _valid_date(value[name]):
                problem(f"{where} : {name} « {value[name]} » : date AAAAMMJJ attendue")
        if value["DateLet"] and not _valid_date(value["DateLet"]):
            problem(f"{where} : DateLet « {value['DateLet']} » : date AAAAMMJJ attendue")
        debit, credit = _cents(value["Debit"]), _cents(value["Credit"])
        ok = debit is not None and credit is not None  # the sums can be made
        for name, cents in (("Debit", debit), ("Credit", credit)):
            if value[name] and cents is None:
                problem(f"{where} : {name} « {value[name]} » : montant attendu avec une "
                        "virgule décimale et deux décimales, sans séparateur de milliers "
                        "(ex. 1234,50)")
        if value["Montantdevise"] and _cents(value["Montantdevise"]) is None:
            problem(f"{where} : Montantdevise « {value['Montantdevise']} » : montant "
                    "attendu avec une virgule décimale (ex. 1234,50)")
        if bool(value["Montantdevise"]) != bool(value["Idevise"]):
            problem(f"{where} : Montantdevise et Idevise vont ensemble")
        elif value["Idevise"] and not _CURRENCY_RE.fullmatch(value["Idevise"]):
            problem(f"{where} : Idevise « {value['Idevise']} » : code de devise attendu")
        if value["CompteNum"] and not re.fullmatch(r"[0-9]{3}[0-9A-Za-z]*", value["CompteNum"]):
            problem(f"{where} : CompteNum « {value['CompteNum']} » : doit commencer par "
                    "3 chiffres du plan comptable")
        if bool(value["CompAuxNum"]) != bool(value["CompAuxLib"]):
            problem(f"{where} : CompAuxNum et CompAuxLib vont ensemble")
        journal, number = value["JournalCode"], value["EcritureNum"]
        if journal and value["JournalLib"]:
            if journal_labels.setdefault(journal, value["JournalLib"]) != value["JournalLib"]:
                problem(f"{where} : le journal {journal} porte deux libellés")
        if not (journal and number):
            previous_key = None
            continue
        key = (journal, number)
        written = entries.get(key)
        if written is None:
            written = _Written(journal, number, index, value["EcritureDate"],
                               value["ValidDate"], value["PieceRef"])
            entries[key] = written
            order.append(written)
        elif previous_key != key:
            problem(f"{where} : les lignes de l'écriture {journal} {number} ne se suivent pas")
        else:
            if value["EcritureDate"] != written.date:
                problem(f"{where} : l'écriture {journal} {number} a deux dates")
            if value["PieceRef"] != written.piece:
                problem(f"{where} : l'écriture {journal} {number} a deux pièces")
        previous_key = key
        written.count += 1
        if ok:
            written.debit += debit  # type: ignore[operator]
            written.credit += credit  # type: ignore[operator]
        else:
            written.broken = True  # its sums mean nothing: the line's problem is told

    for written in order:
        name = f"écriture {written.journal} {written.number}"
        if written.count < 2:
            problem(f"{name} (ligne {written.first_line}) : une seule ligne")
        if not written.broken and written.debit != written.credit:
            problem(f"{name} (ligne {written.first_line}) déséquilibrée : débit "
                    f"{amount(written.debit)}, crédit {amount(written.credit)}")
    last: dict[str, _Written] = {}
    last_number: dict[str, int] = {}
    for written in order:
        match = _NUMBERED_RE.fullmatch(written.number)
        expected = last_number.get(written.journal, 0) + 1
        if match is None:
            problem(f"écriture {written.journal} {written.number} : EcritureNum sans numéro")
        else:
            if int(match.group(2)) != expected:
                problem(f"journal {written.journal} : numérotation discontinue, "
                        f"{written.number} au lieu du n° {expected}")
            last_number[written.journal] = int(match.group(2))
        before = last.get(written.journal)
        if before and all(map(_valid_date, (before.date, written.date, before.valid,
                                            written.valid))) and (
                written.date < before.date or written.valid < before.valid):
            problem(f"journal {written.journal} : {written.number} du {written.date} "
                    f"après {before.number} du {before.date} (ordre chronologique)")
        last[written.journal] = written
    if len(problems) > MAX_PROBLEMS:
        problems = [*problems[:MAX_PROBLEMS], "… (liste tronquée)"]
    return problems
