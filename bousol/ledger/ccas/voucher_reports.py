"""The funder's report on a CCAS aid programme (no Flask here).

For a period (Paris local days, both ends included) and one programme: the vouchers
granted, what was redeemed — in total, by filière and by prestataire —, what expired,
what the CCAS cancelled, what single-use vouchers handed back at their one redemption,
and what remains now (on open vouchers, and not yet granted in the programme's
account); with a series by week (by month over a long period) of granted against
redeemed for the chart. Every amount is integer cents.

Rules (see docs/vouchers.md):
- a voucher counts as *granted* on the day it was granted, a redemption on the day the
  till took it, an expiry or a cancellation on the day its entry was written (the
  nightly sweep closes a voucher the day after its last valid day);
- the filière of a redemption is the prestataire's filière as it stands today;
- *remaining* is a snapshot of now, whatever the period: open vouchers (including those
  past their date that the sweep has not closed yet, shown apart) and the programme's
  account;
- the default period runs from the programme's first day to its last, or to the day
  after its vouchers' last validity when that is later (so expiries fall inside).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from bousol.ledger.books import statements
from bousol.ledger.books.models import FILIERE_LABELS, Entry, Filiere, Party, Posting
from bousol.ledger.ccas import vouchers
from bousol.ledger.ccas.models import Voucher, VoucherRedemption
from bousol.ledger.kernel import money
from bousol.ledger.kernel.clock import PARIS, as_utc, paris_today
from bousol.ledger.kernel.errors import InvalidDate
from bousol.ledger.kernel.text import N_

vouchers_t, redemptions_t = Voucher.__table__, VoucherRedemption.__table__
parties_t, entries_t, postings_t = Party.__table__, Entry.__table__, Posting.__table__
programmes_t = vouchers.programmes_t

WEEKLY_MAX_DAYS = 92  # up to about three months, a bar a week; beyond, a bar a month
PERIOD_MAX_DAYS = 3660  # ten years at most in one report
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Count:
    count: int
    cents: int


@dataclass(frozen=True)
class FiliereLine:
    filiere: str | None  # slug; None for a prestataire without one
    count: int  # redemptions
    cents: int


@dataclass(frozen=True)
class PrestataireLine:
    code: str
    name: str
    filiere: str | None
    count: int  # redemptions
    cents: int


@dataclass(frozen=True)
class Bucket:
    start: dt.date  # first day (a Monday, or the 1st of a month), clipped to the period
    end: dt.date  # last day, clipped to the period
    granted_cents: int
    redeemed_cents: int


@dataclass(frozen=True)
class ProgrammeReport:
    programme: vouchers.ProgrammeView
    ccas_name: str
    date_from: dt.date
    date_to: dt.date
    generated_on: dt.date
    funded_eur_cents: int  # in the period
    funded_bsol_cents: int
    granted: Count
    redeemed: Count  # count of redemptions (a voucher may be used in several goes)
    redeemed_vouchers: int  # distinct vouchers used in the period
    by_filiere: list[FiliereLine]
    by_prestataire: list[PrestataireLine]
    expired: Count
    cancelled: Count
    single_use_returned: Count  # what single-use vouchers' purchases left, returned
    outstanding: Count  # now: open vouchers
    overdue: Count  # now: of which past their date, awaiting the expiry sweep
    available_cents: int  # now: in the programme's account
    step: str  # "week" or "month"
    series: list[Bucket]

    @property
    def remaining_cents(self) -> int:
        return self.outstanding.cents + self.available_cents


def default_period(conn: Connection, programme_id: int) -> tuple[dt.date, dt.date]:
    """The programme's period, stretched to the day after its vouchers' last validity."""
    row = vouchers.programme(conn, programme_id)
    last_valid = conn.execute(select(func.max(vouchers_t.c.valid_until))
                              .where(vouchers_t.c.programme_id == row.id)).scalar()
    end = row.ends_on
    if last_valid is not None and last_valid + dt.timedelta(days=1) > end:
        end = last_valid + dt.timedelta(days=1)
    return row.starts_on, min(end, row.starts_on + dt.timedelta(days=PERIOD_MAX_DAYS - 1))


def check_period(date_from: dt.date, date_to: dt.date) -> None:
    if not (FIRST_DAY <= date_from <= LAST_DAY and FIRST_DAY <= date_to <= LAST_DAY):
        raise InvalidDate(f"Une date entre le {FIRST_DAY:%d/%m/%Y} et le "
                          f"{LAST_DAY:%d/%m/%Y}.")
    if date_to < date_from:
        raise InvalidDate("La fin de la période précède son début.")
    if (date_to - date_from).days + 1 > PERIOD_MAX_DAYS:
        raise InvalidDate("Une période de dix ans au plus.")


def _paris_day(value: dt.datetime) -> dt.date:
    return as_utc(value).astimezone(PARIS).date()


def _buckets(date_from: dt.date, date_to: dt.date) -> tuple[str, list[tuple[dt.date, dt.date]]]:
    spans = []
    if (date_to - date_from).days + 1 <= WEEKLY_MAX_DAYS:
        step = "week"
        start = date_from - dt.timedelta(days=date_from.weekday())
        while start <= date_to:
            end = start + dt.timedelta(days=6)
            spans.append((max(start, date_from), min(end, date_to)))
            start = end + dt.timedelta(days=1)
    else:
        step = "month"
        start = date_from.replace(day=1)
        while start <= date_to:
            following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            spans.append((max(start, date_from), min(following - dt.timedelta(days=1),
                                                     date_to)))
            start = following
    return step, spans


def _series(conn: Connection, programme_id: int, start, end, date_from: dt.date,
            date_to: dt.date) -> tuple[str, list[Bucket]]:
    step, spans = _buckets(date_from, date_to)
    starts = [s for s, _e in spans]
    granted = [0] * len(spans)
    redeemed = [0] * len(spans)

    def index(day: dt.date) -> int:
        # the last bucket starting on or before the day (spans are few and sorted)
        found = 0
        for i, first in enumerate(starts):
            if first <= day:
                found = i
        return found

    for at, cents in conn.execute(
            select(vouchers_t.c.created_at, vouchers_t.c.amount_cents)
            .where(vouchers_t.c.programme_id == programme_id,
                   vouchers_t.c.created_at >= start, vouchers_t.c.created_at < end)):
        granted[index(_paris_day(at))] += int(cents)
    for at, cents in conn.execute(
            select(redemptions_t.c.created_at, redemptions_t.c.amount_cents)
            .join(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id)
            .where(vouchers_t.c.programme_id == programme_id,
                   redemptions_t.c.created_at >= start, redemptions_t.c.created_at < end)):
        redeemed[index(_paris_day(at))] += int(cents)
    return step, [Bucket(s, e, g, r) for (s, e), g, r in zip(spans, granted, redeemed,
                                                                 strict=True)]


def _closed(conn: Connection, programme_id: int, account_id: int, kind: str, start,
            end) -> Count:
    """Vouchers closed by an entry of ``kind`` in the period and what it returned to the
    programme's account (for a redemption: the single-use remainders)."""
    row = conn.execute(
        select(func.count(func.distinct(entries_t.c.id)),
               func.coalesce(func.sum(postings_t.c.amount), 0))
        .select_from(postings_t.join(entries_t, entries_t.c.id == postings_t.c.entry_id))
        .where(postings_t.c.account_id == account_id, entries_t.c.kind == kind,
               postings_t.c.amount > 0,
               entries_t.c.id.in_(select(vouchers_t.c.close_entry_id)
                                  .where(vouchers_t.c.programme_id == programme_id)),
               entries_t.c.created_at >= start, entries_t.c.created_at < end)
    ).one()
    return Count(int(row[0]), int(row[1]))


def programme_report(conn: Connection, programme_id: int, *, date_from: dt.date | None = None,
                     date_to: dt.date | None = None) -> ProgrammeReport:
    """The report of one programme over a period (default: :func:`default_period`).

    ``not_found`` for an unknown programme; ``invalid_date`` for a period out of bounds.
    The caller checks that the programme is the acting CCAS's own.
    """
    prog = vouchers.programme(conn, programme_id)
    if date_from is None or date_to is None:
        default_from, default_to = default_period(conn, programme_id)
        date_from = date_from or default_from
        date_to = date_to or default_to
    check_period(date_from, date_to)
    start, end = statements.paris_bounds(date_from, date_to)
    figures = vouchers.figures(conn, programme_id, date_from=date_from, date_to=date_to)
    ccas_name = conn.execute(
        select(parties_t.c.name).join(programmes_t,
                                      programmes_t.c.ccas_party_id == parties_t.c.id)
        .where(programmes_t.c.id == programme_id)).scalar_one()

    redemption_rows = conn.execute(
        select(parties_t.c.code, parties_t.c.name, parties_t.c.filiere,
               func.count(), func.coalesce(func.sum(redemptions_t.c.amount_cents), 0))
        .select_from(redemptions_t
                     .join(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id)
                     .join(parties_t, parties_t.c.id == redemptions_t.c.prestataire_party_id))
        .where(vouchers_t.c.programme_id == programme_id,
               redemptions_t.c.created_at >= start, redemptions_t.c.created_at < end)
        .group_by(parties_t.c.code, parties_t.c.name, parties_t.c.filiere)
    ).all()
    by_prestataire = sorted(
        (PrestataireLine(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in redemption_rows),
        key=lambda line: (-line.cents, line.code))
    filieres: dict[str | None, list[int]] = {}
    for line in by_prestataire:
        total = filieres.setdefault(line.filiere, [0, 0])
        total[0] += line.count
        total[1] += line.cents
    order = {f.value: i for i, f in enumerate(Filiere)}
    by_filiere = sorted((FiliereLine(f, c, s) for f, (c, s) in filieres.items()),
                        key=lambda line: (-line.cents, order.get(line.filiere or "", 99)))
    redeemed_vouchers = conn.execute(
        select(func.count(func.distinct(redemptions_t.c.voucher_id)))
        .join(vouchers_t, vouchers_t.c.id == redemptions_t.c.voucher_id)
        .where(vouchers_t.c.programme_id == programme_id,
               redemptions_t.c.created_at >= start, redemptions_t.c.created_at < end)
    ).scalar_one()

    account_id = prog.account_id
    expired = _closed(conn, programme_id, account_id, "voucher_expiry", start, end)
    cancelled = _closed(conn, programme_id, account_id, "voucher_cancellation", start, end)
    returned = _closed(conn, programme_id, account_id, "voucher_redemption", start, end)
    today = paris_today()
    open_vouchers = (vouchers_t.c.programme_id == programme_id) \
        & (vouchers_t.c.status == vouchers.OPEN)
    outstanding_count = conn.execute(select(func.count()).where(open_vouchers)).scalar_one()
    overdue_row = conn.execute(
        select(func.count(), func.coalesce(func.sum(vouchers_t.c.remaining_cents), 0))
        .where(open_vouchers, vouchers_t.c.valid_until < today)).one()
    overdue = Count(int(overdue_row[0]), int(overdue_row[1]))
    step, series = _series(conn, programme_id, start, end, date_from, date_to)
    return ProgrammeReport(
        programme=prog, ccas_name=ccas_name, date_from=date_from, date_to=date_to,
        generated_on=today, funded_eur_cents=figures.funded_eur_cents,
        funded_bsol_cents=figures.funded_bsol_cents,
        granted=Count(figures.granted_count, figures.granted_cents),
        redeemed=Count(sum(line.count for line in by_prestataire), figures.redeemed_cents),
        redeemed_vouchers=int(redeemed_vouchers),
        by_filiere=by_filiere, by_prestataire=by_prestataire,
        expired=Count(expired.count, figures.expired_cents),
        cancelled=Count(cancelled.count, figures.cancelled_cents),
        single_use_returned=returned,
        outstanding=Count(int(outstanding_count), figures.outstanding_cents),
        overdue=overdue, available_cents=figures.available_cents, step=step, series=series,
    )


# ---------------------------------------------------------------- CSV

CSV_HEADER = (N_("Rubrique"), N_("Libellé"), N_("Code"), N_("Filière"), N_("Nombre"),
              N_("Montant"), N_("Montant (machine)"))


def filiere_name(slug: str | None, translate: Callable[[str], str] = str) -> str:
    if not slug:
        return ""
    try:
        return translate(FILIERE_LABELS[Filiere(slug)])
    except ValueError:
        return slug


def bucket_label(report: ProgrammeReport, bucket: Bucket,
                 translate: Callable[[str], str] = str) -> str:
    if report.step == "week":
        return translate(N_("Semaine du %(day)s")) % {"day": f"{bucket.start:%d/%m/%Y}"}
    return f"{bucket.start:%m/%Y}"


def report_csv(report: ProgrammeReport, translate: Callable[[str], str] = str) -> str:
    """The report as a spreadsheet: UTF-8 with a BOM, ``;``, one section per group of
    rows (its name in the first column), amounts twice (``12,50`` and ``12.50``). Text
    cells that a spreadsheet would run as a formula get a leading apostrophe."""
    t = translate
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")

    def row(section: str, label: str = "", code: str = "", filiere: str = "",
            count: int | None = None, cents: int | None = None) -> None:
        writer.writerow((
            statements.safe_cell(section), statements.safe_cell(label),
            statements.safe_cell(code), statements.safe_cell(filiere),
            "" if count is None else str(count),  # ours: digits only
            "" if cents is None else statements.amount_fr(cents),
            "" if cents is None else money.format_plain(cents),
        ))

    writer.writerow([t(h) for h in CSV_HEADER])
    prog = report.programme
    row(t(N_("Programme")), prog.name, str(prog.id))
    row(t(N_("CCAS")), report.ccas_name)
    row(t(N_("Période")), f"{report.date_from:%d/%m/%Y} – {report.date_to:%d/%m/%Y}")
    row(t(N_("Édité le")), f"{report.generated_on:%d/%m/%Y}")
    row(t(N_("Budget du programme (euros)")), cents=prog.budget_eur_cents)
    row(t(N_("Financé dans la période (euros)")), cents=report.funded_eur_cents)
    row(t(N_("Financé dans la période (Bou'Sols)")), cents=report.funded_bsol_cents)
    row(t(N_("Bons attribués")), count=report.granted.count, cents=report.granted.cents)
    row(t(N_("Utilisations")), count=report.redeemed.count, cents=report.redeemed.cents)
    row(t(N_("Bons utilisés (distincts)")), count=report.redeemed_vouchers)
    row(t(N_("Bons expirés")), count=report.expired.count, cents=report.expired.cents)
    row(t(N_("Bons annulés")), count=report.cancelled.count, cents=report.cancelled.cents)
    row(t(N_("Reliquats des bons à usage unique")), count=report.single_use_returned.count,
        cents=report.single_use_returned.cents)
    row(t(N_("Reste sur les bons ouverts (aujourd'hui)")), count=report.outstanding.count,
        cents=report.outstanding.cents)
    row(t(N_("dont bons échus en attente d'expiration")), count=report.overdue.count,
        cents=report.overdue.cents)
    row(t(N_("Disponible dans le programme (aujourd'hui)")), cents=report.available_cents)
    for line in report.by_filiere:
        row(t(N_("Utilisations par filière")), filiere_name(line.filiere, t),
            filiere=line.filiere or "", count=line.count, cents=line.cents)
    for shop in report.by_prestataire:
        row(t(N_("Utilisations par prestataire")), shop.name, shop.code,
            shop.filiere or "", count=shop.count, cents=shop.cents)
    for bucket in report.series:
        label = bucket_label(report, bucket, t)
        row(t(N_("Attribués par période")), label, cents=bucket.granted_cents)
        row(t(N_("Utilisés par période")), label, cents=bucket.redeemed_cents)
    return out.getvalue()


def csv_filename(report: ProgrammeReport) -> str:
    return (f"rapport-programme-{report.programme.id}-{report.date_from.isoformat()}"
            f"-au-{report.date_to.isoformat()}.csv")
