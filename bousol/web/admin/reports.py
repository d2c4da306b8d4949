"""The treasurer's activity report (issue 7): money supply and coverage, payments by
filière and by commune, active members, velocity, B2B, CCAS aid — month by month, with
charts and CSV files. For the association (admin) and the bank; the rules are in
bousol/ledger/association/reports.py and docs/reports.md."""

from __future__ import annotations

import datetime as dt

from flask import Response, abort, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _

from bousol.ledger.association import reports
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import InvalidDate
from bousol.web import charts, role_required, unit_of_work
from bousol.web.admin.views import bp

FIELDS = ("du", "au")


def _period() -> tuple[dict[str, str], dict[str, str], dt.date | None, dt.date | None]:
    """The ``du`` and ``au`` arguments: (what was typed, errors by field, months)."""
    typed = {name: (request.args.get(name) or "").strip()[:20] for name in FIELDS}
    errors: dict[str, str] = {}
    months: dict[str, dt.date | None] = dict.fromkeys(FIELDS)
    for name in FIELDS:
        try:
            months[name] = reports.parse_month(typed[name], name)
        except InvalidDate as error:
            errors[name] = error.message
    return typed, errors, months["du"], months["au"]


def _load():
    """(report or None, typed, errors): errors make the page answer 422."""
    typed, errors, first, last = _period()
    report = None
    if not errors:
        try:
            # One snapshot for every figure; a few seconds stale is fine (the replica).
            with unit_of_work(read_only=True, stale_ok=True) as uow:
                report = reports.activity_report(uow.conn, first, last)
        except InvalidDate as error:
            field = str(error.details.get("field") or "du")
            errors[field if field in FIELDS else "du"] = error.message
    return report, typed, errors


def month_name(month: dt.date) -> str:
    """``novembre 2026`` (in the page's language)."""
    return format_date(month, "MMMM y")


def _positive(values: list[int]) -> list[int]:
    """Bars and lines from zero up: a month whose refunds outweigh its payments shows
    none (the table beside the chart gives the figure)."""
    return [max(v, 0) for v in values]


def _charts(report: reports.ActivityReport) -> dict:
    labels = [f"{m.month:%m/%Y}" for m in report.months]
    months = report.months
    return {
        "supply": charts.line_chart(
            _("Masse monétaire et euros qui la couvrent, en fin de mois"), labels,
            [charts.Series(_("Masse monétaire"), [m.supply.total for m in months],
                           "series-bsol"),
             charts.Series(_("Couverture en euros"), [m.supply.eur_backing for m in months],
                           "series-eur")],
            chart_id="supply-chart"),
        "payments": charts.bar_chart(
            _("Volume des paiements chez les prestataires, par mois"), labels,
            [charts.Series(_("Tous les paiements"),
                           _positive([m.payments.cents for m in months]), "series-bsol"),
             charts.Series(_("dont B2B"), _positive([m.b2b_net_cents for m in months]),
                           "series-eur")],
            chart_id="payments-chart"),
        "aid": charts.bar_chart(
            _("Aide du CCAS dépensée chez les prestataires, par mois"), labels,
            [charts.Series(_("Bons papier"), [m.vouchers_paper.cents for m in months],
                           "series-bsol"),
             charts.Series(_("Bons fléchés"), [m.vouchers_earmarked.cents for m in months],
                           "series-eur")],
            chart_id="aid-chart"),
    }


def _page(report, typed, errors, status: int = 200):
    args = {k: v for k, v in typed.items() if v}
    if report is not None:
        args = {"du": f"{report.first_month:%Y-%m}", "au": f"{report.last_month:%Y-%m}"}
    return render_template(
        "admin/reports.html", title=_("Rapports d'activité"), report=report, typed=typed,
        errors=errors, charts=_charts(report) if report is not None else None,
        month_name=month_name, ratio=reports.ratio_fr, commune_name=reports.commune_name,
        translate=_, current_month=f"{paris_today():%Y-%m}", max_months=reports.MAX_MONTHS,
        csv_urls={table: url_for("admin.activity_report_csv", table=table, **args)
                  for table in reports.CSV_TABLES},
    ), status


@bp.route("/rapports")
@role_required("admin", "bank")
def activity_report():
    report, typed, errors = _load()
    return _page(report, typed, errors, 422 if errors else 200)


@bp.route("/rapports.csv")
@role_required("admin", "bank")
def activity_report_csv():
    table = request.args.get("table", "mois")
    if table not in reports.CSV_TABLES:
        abort(404)
    report, typed, errors = _load()
    if errors:
        return _page(report, typed, errors, 422)
    body = reports.report_csv(report, table, translate=_).encode("utf-8")
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{reports.csv_filename(report, table)}"',
        "Content-Type": "text/csv; charset=utf-8",
        "Cache-Control": "no-store",
    })
