"""Granting aid vouchers by the batch: a CSV file of beneficiaries checked line by line, previewed,
then granted in one unit of work (all the lines or none). One voucher's grant is
:mod:`bousol.ledger.ccas.vouchers`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select

from bousol.ledger.ccas.vouchers import (
    _WORDS,
    BATCH_MAX_LINES,
    NAME_MAX,
    REF_MAX,
    GrantLine,
    _grant_all,
    parse_ref,
    vouchers_t,
)
from bousol.ledger.kernel import csv_text, idempotency, inputs, money
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import (
    DomainError,
    InvalidInput,
)
from bousol.ledger.kernel.uow import UnitOfWork

# ---------------------------------------------------------------- CSV batches


@dataclass(frozen=True)
class BatchLine:
    number: int  # line number in the file (1 = header, if there is one)
    ref: str
    amount: str
    name: str | None
    error: str | None
    amount_cents: int | None


@dataclass(frozen=True)
class BatchPreview:
    lines: list[BatchLine]
    total_cents: int

    @property
    def errors(self) -> list[BatchLine]:
        return [line for line in self.lines if line.error]

    @property
    def ok(self) -> bool:
        return bool(self.lines) and not self.errors


def preview_batch(text: object) -> BatchPreview:
    """Read a CSV file of ``reference;amount[;name]`` (comma or semicolon, optional
    header): every line with its error, before anything is written."""
    if isinstance(text, bytes):  # UTF-8 (BOM or not) or Windows-1252, detected
        text, _encoding = csv_text.decode(text)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("Le fichier est vide.")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    sample = text[:2000]
    delimiter = ";" if sample.count(";") >= sample.count(",") else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as error:
        raise InvalidInput(f"Fichier CSV illisible ({error}) : vérifiez les guillemets.") \
            from None
    if len(rows) > BATCH_MAX_LINES + 1:
        raise InvalidInput(f"{BATCH_MAX_LINES} lignes au plus par fichier.")
    lines, seen, total = [], {}, 0
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == 1 and _is_header(cells):
            continue
        ref_text = cells[0] if cells else ""
        amount_text = cells[1] if len(cells) > 1 else ""
        name_text = cells[2] if len(cells) > 2 and cells[2] else None
        error, cents, ref, name = None, None, ref_text, None
        try:
            ref = parse_ref(ref_text)
            cents = money.parse_amount(amount_text)
            name = inputs.text(name_text, NAME_MAX, "Nom", raw_limit=inputs.MEMO_MAX,
                               messages=_WORDS)
            if len(cells) > 3 and any(cells[3:]):
                raise InvalidInput("Trop de colonnes : référence ; montant ; nom (facultatif).")
            if ref in seen:
                raise InvalidInput(f"Référence déjà à la ligne {seen[ref]}.")
            seen[ref] = number
        except DomainError as failure:  # every refusal becomes the line's message
            error = failure.message
            cents = None
        if cents:
            total += cents
        lines.append(BatchLine(number, ref_text[:REF_MAX + 10], amount_text[:30], name,
                               error, cents))
    if not lines:
        raise InvalidInput("Aucune ligne dans le fichier.")
    return BatchPreview(lines, total)


def _is_header(cells: list[str]) -> bool:
    """A first line whose amount column is not an amount ("montant", "amount"…)."""
    if len(cells) < 2:
        return False
    try:
        money.parse_amount(cells[1])
    except DomainError:
        return True
    return False


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    voucher_ids: list[int]
    total_cents: int


def grant_batch(uow: UnitOfWork, actor: Actor, *, text: object, programme_id: object = None,
                valid_until: object = None, idempotency_key: str | None = None
                ) -> BatchResult:
    """Grant every line of the file, all or nothing (a bad line: nothing is written).
    With an idempotency key, a repeat returns the first lot (no second lot)."""
    preview = preview_batch(text)
    if not preview.ok:
        bad = preview.errors[0]
        raise InvalidInput(f"{len(preview.errors)} ligne(s) en erreur, rien n'a été attribué "
                           f"(ligne {bad.number} : {bad.error}).", lines=len(preview.errors))
    lines = [GrantLine(parse_ref(line.ref), line.amount_cents, line.name)
             for line in preview.lines]
    request = {"op": "voucher_batch", "programme": str(programme_id or ""),
               "valid_until": str(valid_until or ""),
               "lines": [[line.ref, line.amount_cents, line.name] for line in lines]}

    def work(uow: UnitOfWork) -> BatchResult:
        ids = _grant_all(uow, actor, lines, programme_id=programme_id,
                         valid_until=valid_until, filieres=None, soliste_code=None,
                         batch=True)
        batch_id = uow.conn.execute(select(vouchers_t.c.batch_id)
                                    .where(vouchers_t.c.id == ids[0])).scalar_one()
        return BatchResult(batch_id, ids, preview.total_cents)

    return idempotency.run(uow, actor, idempotency_key, request, BatchResult, work)
