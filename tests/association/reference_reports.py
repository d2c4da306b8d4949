"""The activity report computed from the journal, as it was before the maintained figures
(issue 18): the reference that tests/association/test_report_figures.py compares
``reports.activity_report`` with, on random ledgers. Kept as it was written, only moved."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    union_all,
)

from bousol.ledger.association.reports import (
    ZERO,
    ActivityReport,
    GroupFigures,
    MonthFigures,
    Supply,
    Tally,
    _commune_order,
    _filiere_order,
    add_months,
    month_start_utc,
    months_in,
    resolve_period,
)
from bousol.ledger.books.models import (
    Account,
    Entry,
    Filiere,
    Party,
    PartyKind,
    Posting,
    SystemAccount,
)
from bousol.ledger.ccas.models import Voucher, VoucherRedemption
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.rows import Rows

accounts_t, entries_t, postings_t = Account.__table__, Entry.__table__, Posting.__table__
parties_t, vouchers_t = Party.__table__, Voucher.__table__
redemptions_t = VoucherRedemption.__table__


# ---------------------------------------------------------------- queries


def _bucket(column, bounds: list[dt.datetime], *, before: bool = False) -> ColumnElement:
    """The month index (0 …) of a timestamp, as SQL: a CASE over the months' UTC bounds
    (the same on SQLite and PostgreSQL); −1 before the period when ``before``. The
    indexes are written as integer literals, so the database never has to guess the
    type of a parameter."""
    whens = [(column < bounds[0], literal_column("-1"))] if before else []
    whens += [(column < bounds[i + 1], literal_column(str(i))) for i in range(len(bounds) - 1)]
    return case(*whens, else_=literal_column(str(len(bounds) - 1)))


_SUPPLY_CODES = (SystemAccount.ISSUANCE, SystemAccount.NOTES_CIRCULATION,
                 SystemAccount.VOUCHERS_OUTSTANDING, SystemAccount.EUR_RESERVE,
                 SystemAccount.DESK_CASH)


def _supplies(conn: Connection, bounds: list[dt.datetime]) -> list[Supply]:
    """The money supply at the end of each month: running sums of the postings."""
    inner = (
        select(_bucket(entries_t.c.created_at, bounds, before=True).label("bucket"),
               accounts_t.c.system_code.label("code"), postings_t.c.amount)
        .select_from(postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id)
                     .join(accounts_t, accounts_t.c.id == postings_t.c.account_id))
        .where(entries_t.c.created_at < bounds[-1],
               or_(accounts_t.c.system_code.in_([c.value for c in _SUPPLY_CODES]),
                   and_(accounts_t.c.system_code.is_(None),
                        postings_t.c.currency == "BSOL")))
        .subquery()
    )
    sums: dict[int, dict[str | None, int]] = defaultdict(dict)
    for bucket, code, amount in conn.execute(
            select(inner.c.bucket, inner.c.code, func.sum(inner.c.amount))
            .group_by(inner.c.bucket, inner.c.code)):
        sums[int(bucket)][code] = int(amount)
    running: dict[str | None, int] = defaultdict(int)
    for code, amount in sums.get(-1, {}).items():
        running[code] += amount
    supplies = []
    for index in range(len(bounds) - 1):
        for code, amount in sums.get(index, {}).items():
            running[code] += amount
        supplies.append(Supply(
            electronic=running[None],
            notes=running[SystemAccount.NOTES_CIRCULATION.value],
            vouchers=running[SystemAccount.VOUCHERS_OUTSTANDING.value],
            total=-running[SystemAccount.ISSUANCE.value],
            eur_backing=running[SystemAccount.EUR_RESERVE.value]
            + running[SystemAccount.DESK_CASH.value],
        ))
    return supplies


def _in_period(bounds: list[dt.datetime]) -> ColumnElement:
    return and_(entries_t.c.created_at >= bounds[0], entries_t.c.created_at < bounds[-1])


def _two_legged(kind: str, bounds: list[dt.datetime], *, not_reversed: bool):
    """Entries of ``kind`` in the period, one row each: month, the party whose posting
    is negative (payer) and the one whose posting is positive (payee), the amount."""
    out_p, in_p = postings_t.alias("out_p"), postings_t.alias("in_p")
    out_a, in_a = accounts_t.alias("out_a"), accounts_t.alias("in_a")
    payer, payee = parties_t.alias("payer"), parties_t.alias("payee")
    query = (
        select(_bucket(entries_t.c.created_at, bounds).label("bucket"),
               payer.c.id.label("payer_id"), payer.c.kind.label("payer_kind"),
               payer.c.filiere.label("payer_filiere"), payer.c.commune.label("payer_commune"),
               payee.c.id.label("payee_id"), payee.c.kind.label("payee_kind"),
               payee.c.filiere.label("payee_filiere"), payee.c.commune.label("payee_commune"),
               in_p.c.amount.label("amount"))
        .select_from(
            entries_t
            .join(out_p, and_(out_p.c.entry_id == entries_t.c.id, out_p.c.amount < 0))
            .join(out_a, out_a.c.id == out_p.c.account_id)
            .join(payer, payer.c.id == out_a.c.party_id)
            .join(in_p, and_(in_p.c.entry_id == entries_t.c.id, in_p.c.amount > 0))
            .join(in_a, in_a.c.id == in_p.c.account_id)
            .join(payee, payee.c.id == in_a.c.party_id))
        .where(entries_t.c.kind == kind, _in_period(bounds),
               out_a.c.system_code.is_(None), in_a.c.system_code.is_(None))
    )
    if not_reversed:
        reversal = entries_t.alias("reversal")
        query = query.where(~exists().where(reversal.c.reverses_id == entries_t.c.id))
    return query.subquery()


def _redemptions(bounds: list[dt.datetime]):
    """Voucher redemptions in the period: month, paper or earmarked, the soliste (if
    earmarked), the prestataire, its filière and commune, the amount it received."""
    shop = parties_t.alias("shop")
    return (
        select(_bucket(entries_t.c.created_at, bounds).label("bucket"),
               vouchers_t.c.soliste_party_id.label("soliste_id"),
               case((vouchers_t.c.soliste_party_id.is_(None), literal_column("0")),
                    else_=literal_column("1")).label("earmarked"),
               shop.c.id.label("payee_id"), shop.c.filiere.label("payee_filiere"),
               shop.c.commune.label("payee_commune"),
               redemptions_t.c.amount_cents.label("amount"))
        .select_from(
            entries_t
            .join(redemptions_t, redemptions_t.c.entry_id == entries_t.c.id)
            .join(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id)
            .join(shop, shop.c.id == redemptions_t.c.prestataire_party_id))
        .where(entries_t.c.kind == "voucher_redemption", _in_period(bounds))
        .subquery()
    )


def _grouped(conn: Connection, inner, *columns) -> Rows:
    """(bucket, *columns, count, sum of amount) over a subquery."""
    keys = [inner.c.bucket, *(inner.c[name] for name in columns)]
    return conn.execute(
        select(*keys, func.count(), func.coalesce(func.sum(inner.c.amount), 0))
        .group_by(*keys)
    ).all()


def _distinct_per_month(conn: Connection, *parts) -> dict[int, int]:
    """How many distinct parties per month over the union of (bucket, party) selects."""
    union = union_all(*parts).subquery()
    return {int(bucket): int(count) for bucket, count in conn.execute(
        select(union.c.bucket, func.count(func.distinct(union.c.party_id)))
        .group_by(union.c.bucket))}


def _commune(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def journal_activity_report(conn: Connection, first_month: dt.date | None = None,
                    last_month: dt.date | None = None, *,
                    today: dt.date | None = None) -> ActivityReport:
    """The report of the months ``first_month`` … ``last_month`` (see the module's doc;
    :func:`resolve_period` fills in and checks the period)."""
    today = today or paris_today()
    first, last = resolve_period(first_month, last_month, today)
    count = months_in(first, last)
    months = [add_months(first, i) for i in range(count)]
    bounds = [month_start_utc(add_months(first, i)) for i in range(count + 1)]
    supplies = _supplies(conn, bounds)

    tallies: dict[str, dict[int, Tally]] = defaultdict(dict)
    filiere: dict[int, dict[str | None, list[int]]] = defaultdict(dict)
    commune: dict[int, dict[str | None, list[int]]] = defaultdict(dict)

    def tally(name: str, bucket: int, number: int, cents: int) -> None:
        before = tallies[name].get(bucket, ZERO)
        tallies[name][bucket] = Tally(before.count + number, before.cents + cents)

    def group(bucket: int, slug: str | None, town: str | None, number: int,
              cents: int) -> None:
        for table, key in ((filiere, slug), (commune, _commune(town))):
            line = table[bucket].setdefault(key, [0, 0])
            line[0] += number
            line[1] += cents

    prestataire, soliste = PartyKind.PRESTATAIRE.value, PartyKind.SOLISTE.value
    payments = _two_legged("payment", bounds, not_reversed=True)
    for bucket, payer_kind, payee_kind, slug, town, number, cents in _grouped(
            conn, payments, "payer_kind", "payee_kind", "payee_filiere", "payee_commune"):
        bucket, number, cents = int(bucket), int(number), int(cents)
        if payee_kind == prestataire:
            tally("b2b" if payer_kind == prestataire else "purchases", bucket, number, cents)
            group(bucket, slug, town, number, cents)
        elif payer_kind == PartyKind.CCAS.value and payee_kind == soliste:
            tally("aid_transfers", bucket, number, cents)

    refunds = _two_legged("refund", bounds, not_reversed=False)
    for bucket, shop_kind, customer_kind, slug, town, number, cents in _grouped(
            conn, refunds, "payer_kind", "payee_kind", "payer_filiere", "payer_commune"):
        if shop_kind != prestataire:
            continue
        bucket, number, cents = int(bucket), int(number), int(cents)
        name = "refunds_b2b" if customer_kind == prestataire else "refunds_purchases"
        tally(name, bucket, number, cents)
        group(bucket, slug, town, 0, -cents)

    redemptions = _redemptions(bounds)
    for bucket, earmarked, slug, town, number, cents in _grouped(
            conn, redemptions, "earmarked", "payee_filiere", "payee_commune"):
        bucket, number, cents = int(bucket), int(number), int(cents)
        tally("vouchers_earmarked" if int(earmarked) else "vouchers_paper", bucket, number,
              cents)
        group(bucket, slug, town, number, cents)

    active_solistes = _distinct_per_month(
        conn,
        select(payments.c.bucket, payments.c.payer_id.label("party_id"))
        .where(payments.c.payer_kind == soliste, payments.c.payee_kind == prestataire),
        select(redemptions.c.bucket, redemptions.c.soliste_id.label("party_id"))
        .where(redemptions.c.soliste_id.is_not(None)),
    )
    active_prestataires = _distinct_per_month(
        conn,
        select(payments.c.bucket, payments.c.payee_id.label("party_id"))
        .where(payments.c.payee_kind == prestataire),
        select(redemptions.c.bucket, redemptions.c.payee_id.label("party_id")),
    )

    figures = []
    for index, month in enumerate(months):
        by_filiere = {f.value: GroupFigures(f.value, 0, 0) for f in Filiere}
        by_filiere.update({k: GroupFigures(k, c, s)
                           for k, (c, s) in filiere.get(index, {}).items()})
        by_commune = [GroupFigures(k, c, s) for k, (c, s) in commune.get(index, {}).items()]
        figures.append(MonthFigures(
            month=month, supply=supplies[index],
            purchases=tallies["purchases"].get(index, ZERO),
            b2b=tallies["b2b"].get(index, ZERO),
            vouchers_paper=tallies["vouchers_paper"].get(index, ZERO),
            vouchers_earmarked=tallies["vouchers_earmarked"].get(index, ZERO),
            refunds_purchases=tallies["refunds_purchases"].get(index, ZERO),
            refunds_b2b=tallies["refunds_b2b"].get(index, ZERO),
            aid_transfers=tallies["aid_transfers"].get(index, ZERO),
            active_solistes=active_solistes.get(index, 0),
            active_prestataires=active_prestataires.get(index, 0),
            by_filiere=tuple(sorted(by_filiere.values(), key=_filiere_order)),
            by_commune=tuple(sorted(by_commune, key=_commune_order)),
        ))
    return ActivityReport(first, last, today, tuple(figures))


