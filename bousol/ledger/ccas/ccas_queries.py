"""What the CCAS's pages read beside :mod:`bousol.ledger.ccas.vouchers` (no Flask here).

Every function takes the CCAS's party id and reads only that CCAS's rows: another CCAS's
programme, voucher, batch or beneficiary is simply not found (None).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from bousol.ledger.books.models import Account, Currency, Party
from bousol.ledger.ccas import voucher_codes as codes
from bousol.ledger.ccas import vouchers
from bousol.ledger.ccas.models import (
    AidProgramme,
    Beneficiary,
    Voucher,
    VoucherBatch,
    VoucherRedemption,
)
from bousol.ledger.kernel import inputs
from bousol.ledger.kernel.errors import DomainError

accounts_t, parties_t = Account.__table__, Party.__table__
programmes_t, beneficiaries_t = AidProgramme.__table__, Beneficiary.__table__
vouchers_t, batches_t = Voucher.__table__, VoucherBatch.__table__
redemptions_t = VoucherRedemption.__table__

def main_balance(conn: Connection, party_id: int) -> int:
    """The CCAS's own Bou'Sols (its ``main`` account; the programmes' accounts apart)."""
    return int(conn.execute(
        select(func.coalesce(func.sum(accounts_t.c.balance), 0))
        .where(accounts_t.c.party_id == party_id, accounts_t.c.currency == Currency.BSOL.value,
               accounts_t.c.purpose == "main")).scalar_one())


def own_programme(conn: Connection, party_id: int, programme_id: object
                  ) -> vouchers.ProgrammeView | None:
    """The programme if it is this CCAS's, else None."""
    if not inputs.is_database_id(programme_id):
        return None
    owner = conn.execute(select(programmes_t.c.ccas_party_id)
                         .where(programmes_t.c.id == programme_id)).scalar()
    if owner != party_id:
        return None
    return vouchers.programme(conn, programme_id)


@dataclass(frozen=True)
class VoucherDetail:
    """A voucher as its CCAS sees it: with the beneficiary (CCAS staff only)."""

    view: vouchers.VoucherView
    beneficiary_ref: str
    beneficiary_name: str | None
    beneficiary_erased: bool
    soliste_code: str | None
    soliste_name: str | None
    batch_id: int | None
    closed_at: dt.datetime | None


def voucher_by_code(conn: Connection, party_id: int, typed_code: object) -> VoucherDetail | None:
    """The CCAS's voucher with this code (typed in any of the forgiving forms), or None."""
    try:
        body = codes.parse(typed_code)
    except DomainError:
        return None
    soliste = parties_t.alias("soliste")
    row = conn.execute(
        select(vouchers_t.c.id, vouchers_t.c.batch_id, vouchers_t.c.closed_at,
               beneficiaries_t.c.ref, beneficiaries_t.c.name, beneficiaries_t.c.erased_at,
               soliste.c.code.label("soliste_code"), soliste.c.name.label("soliste_name"))
        .join(beneficiaries_t, beneficiaries_t.c.id == vouchers_t.c.beneficiary_id)
        .outerjoin(soliste, soliste.c.id == vouchers_t.c.soliste_party_id)
        .where(vouchers_t.c.code == body, vouchers_t.c.ccas_party_id == party_id)
    ).first()
    if row is None:
        return None
    (view,) = vouchers._views(conn, vouchers_t.c.id == row.id, limit=1)
    return VoucherDetail(view, row.ref, row.name, row.erased_at is not None,
                         row.soliste_code, row.soliste_name, row.batch_id, row.closed_at)


@dataclass(frozen=True)
class RedemptionLine:
    created_at: dt.datetime
    prestataire_code: str
    prestataire_name: str
    amount_cents: int
    entry_id: int


def redemptions(conn: Connection, voucher_id: int) -> list[RedemptionLine]:
    """The purchases paid with a voucher, oldest first, with the prestataire's name."""
    rows = conn.execute(
        select(redemptions_t.c.created_at, redemptions_t.c.amount_cents,
               redemptions_t.c.entry_id, parties_t.c.code, parties_t.c.name)
        .join(parties_t, parties_t.c.id == redemptions_t.c.prestataire_party_id)
        .where(redemptions_t.c.voucher_id == voucher_id)
        .order_by(redemptions_t.c.id)
    ).all()
    return [RedemptionLine(r.created_at, r.code, r.name, int(r.amount_cents), r.entry_id)
            for r in rows]


@dataclass(frozen=True)
class BatchInfo:
    id: int
    programme_id: int | None
    programme_name: str | None
    count: int
    total_cents: int
    created_at: dt.datetime


def _batch_query(party_id: int):
    return (select(batches_t.c.id, batches_t.c.programme_id, batches_t.c.count,
                   batches_t.c.total_cents, batches_t.c.created_at,
                   programmes_t.c.name.label("programme_name"))
            .outerjoin(programmes_t, programmes_t.c.id == batches_t.c.programme_id)
            .where(batches_t.c.ccas_party_id == party_id))


def _batch(row) -> BatchInfo:
    return BatchInfo(row.id, row.programme_id, row.programme_name, int(row.count),
                     int(row.total_cents), row.created_at)


def batches(conn: Connection, party_id: int, *, programme_id: int | None = None,
            limit: int = 20) -> list[BatchInfo]:
    """The CCAS's CSV batches, newest first."""
    query = _batch_query(party_id)
    if programme_id is not None:
        query = query.where(batches_t.c.programme_id == programme_id)
    rows = conn.execute(query.order_by(batches_t.c.id.desc()).limit(limit)).all()
    return [_batch(r) for r in rows]


def batch(conn: Connection, party_id: int, batch_id: object) -> BatchInfo | None:
    if not inputs.is_database_id(batch_id):
        return None
    row = conn.execute(_batch_query(party_id).where(batches_t.c.id == batch_id)).first()
    return _batch(row) if row is not None else None


@dataclass(frozen=True)
class BeneficiaryLine:
    ref: str
    name: str | None
    created_at: dt.datetime
    voucher_count: int
    open_cents: int  # what is left on its open vouchers


def _beneficiary_query(party_id: int):
    open_left = func.coalesce(func.sum(vouchers_t.c.remaining_cents), 0)
    return (select(beneficiaries_t.c.ref, beneficiaries_t.c.name,
                   beneficiaries_t.c.created_at,
                   func.count(vouchers_t.c.id).label("voucher_count"),
                   open_left.label("open_cents"))
            .outerjoin(vouchers_t, vouchers_t.c.beneficiary_id == beneficiaries_t.c.id)
            .where(beneficiaries_t.c.ccas_party_id == party_id,
                   beneficiaries_t.c.erased_at.is_(None))
            .group_by(beneficiaries_t.c.id, beneficiaries_t.c.ref, beneficiaries_t.c.name,
                      beneficiaries_t.c.created_at))


def _line(row) -> BeneficiaryLine:
    return BeneficiaryLine(row.ref, row.name, row.created_at, int(row.voucher_count),
                           int(row.open_cents))


def search_beneficiaries(conn: Connection, party_id: int, ref_part: str | None, *,
                         limit: int = 50) -> list[BeneficiaryLine]:
    """The CCAS's beneficiaries whose reference contains ``ref_part`` (case-insensitive;
    all of them, latest first, without it). Erased ones are not listed."""
    query = _beneficiary_query(party_id)
    if ref_part:
        escaped = (ref_part.lower().replace("\\", "\\\\").replace("%", "\\%")
                   .replace("_", "\\_"))
        query = query.where(func.lower(beneficiaries_t.c.ref)
                            .like(f"%{escaped}%", escape="\\"))
    rows = conn.execute(query.order_by(beneficiaries_t.c.id.desc()).limit(limit)).all()
    return [_line(r) for r in rows]


def beneficiary(conn: Connection, party_id: int, ref: str) -> BeneficiaryLine | None:
    row = conn.execute(_beneficiary_query(party_id)
                       .where(beneficiaries_t.c.ref == ref)).first()
    return _line(row) if row is not None else None


def batch_vouchers(conn: Connection, party_id: int, batch_id: int) -> list[vouchers.VoucherLine]:
    """The vouchers of one of the CCAS's batches, in the file's order, with who they went
    to (CCAS staff only)."""
    rows = conn.execute(
        select(vouchers_t.c.id, beneficiaries_t.c.ref, beneficiaries_t.c.name)
        .join(beneficiaries_t, beneficiaries_t.c.id == vouchers_t.c.beneficiary_id)
        .where(vouchers_t.c.batch_id == batch_id, vouchers_t.c.ccas_party_id == party_id)
        .order_by(vouchers_t.c.id)
    ).all()
    views = {v.id: v for v in vouchers._views(conn, vouchers_t.c.id.in_([r.id for r in rows]),
                                               limit=vouchers.BATCH_MAX_LINES)}
    return [vouchers.VoucherLine(views[r.id], r.ref, r.name) for r in rows]
