"""The funder's report on an aid programme: a page with its figures, tables and chart,
and the same as a CSV file and a PDF (reportlab). Only the CCAS that runs the programme
sees it; another CCAS gets 404, as for a programme that does not exist."""

from __future__ import annotations

import datetime as dt
import io
from xml.sax.saxutils import escape as xml_escape

from flask import Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bousol.ledger.ccas import ccas_queries, voucher_reports, vouchers
from bousol.ledger.kernel.errors import InvalidDate
from bousol.web import charts, role_required, unit_of_work
from bousol.web.ccas.printing import pdf_text
from bousol.web.ccas.views import bp
from bousol.web.formatting import fr_money
from bousol.web.forms import or_404

TEAL, BROWN = colors.HexColor("#0b5e63"), colors.HexColor("#8a4b00")


def _period_args() -> tuple[dict[str, str], dict[str, str], dt.date | None, dt.date | None]:
    """The ``du`` and ``au`` arguments: (what was typed, errors by field, dates)."""
    typed = {name: (request.args.get(name) or "").strip()[:20] for name in ("du", "au")}
    errors: dict[str, str] = {}
    dates: dict[str, dt.date | None] = {"du": None, "au": None}
    for name, label in (("du", _("Du")), ("au", _("Au"))):
        if typed[name]:
            try:
                dates[name] = vouchers.parse_date(typed[name], label)
            except InvalidDate:
                errors[name] = _("Date invalide : jj/mm/aaaa.")
    return typed, errors, dates["du"], dates["au"]


def _load(programme_id: int):
    """(programme, report or None, typed, errors): errors make the page answer 422."""
    typed, errors, date_from, date_to = _period_args()
    report = None
    with unit_of_work(read_only=True) as uow:
        # 404 unless the programme is the acting CCAS's own.
        programme = ccas_queries.own_programme(uow.conn, current_user.party_id, programme_id)
        if programme is None:
            abort(404)
        if not errors:
            with or_404():
                try:
                    report = voucher_reports.programme_report(
                        uow.conn, programme_id, date_from=date_from, date_to=date_to)
                except InvalidDate as error:
                    errors["au" if typed["au"] else "du"] = error.message
    return programme, report, typed, errors


def _bucket_labels(report) -> list[str]:
    if report.step == "week":
        return [f"{b.start:%d/%m}" for b in report.series]
    return [f"{b.start:%m/%Y}" for b in report.series]


def _page(programme, report, typed, errors, status: int = 200):
    programme_id = programme.id
    chart = None
    args = {k: v for k, v in typed.items() if v}
    if report is not None:
        chart = charts.bar_chart(
            _("Bou'Sols attribués et utilisés, par semaine") if report.step == "week"
            else _("Bou'Sols attribués et utilisés, par mois"),
            _bucket_labels(report),
            [charts.Series(_("Attribués"), [b.granted_cents for b in report.series],
                           "series-bsol"),
             charts.Series(_("Utilisés"), [b.redeemed_cents for b in report.series],
                           "series-eur")],
            chart_id="report-chart")
        args = {"du": f"{report.date_from:%d/%m/%Y}", "au": f"{report.date_to:%d/%m/%Y}"}
    return render_template(
        "ccas/report.html", title=_("Rapport — %(name)s", name=programme.name),
        programme=programme, report=report, typed=typed, errors=errors,
        chart=chart, bucket_label=voucher_reports.bucket_label, translate=_,
        csv_url=url_for("ccas.programme_report_csv", programme_id=programme_id, **args),
        pdf_url=url_for("ccas.programme_report_pdf", programme_id=programme_id, **args),
        form_url=url_for("ccas.programme_report", programme_id=programme_id),
    ), status


@bp.route("/programmes/<int:programme_id>/rapport")
@role_required("ccas")
def programme_report(programme_id: int):
    programme, report, typed, errors = _load(programme_id)
    return _page(programme, report, typed, errors, 422 if errors else 200)


@bp.route("/programmes/<int:programme_id>/rapport.csv")
@role_required("ccas")
def programme_report_csv(programme_id: int):
    programme, report, typed, errors = _load(programme_id)
    if errors:
        return _page(programme, report, typed, errors, 422)
    body = voucher_reports.report_csv(report, translate=_).encode("utf-8")
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition":
            f'attachment; filename="{voucher_reports.csv_filename(report)}"',
        "Content-Type": "text/csv; charset=utf-8",
        "Cache-Control": "no-store",
    })


@bp.route("/programmes/<int:programme_id>/rapport.pdf")
@role_required("ccas")
def programme_report_pdf(programme_id: int):
    programme, report, typed, errors = _load(programme_id)
    if errors:
        return _page(programme, report, typed, errors, 422)
    name = voucher_reports.csv_filename(report).removesuffix(".csv") + ".pdf"
    return Response(report_pdf(report), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })


# ---------------------------------------------------------------- PDF


def _m(cents: int, currency: str = "BSOL") -> str:
    return pdf_text(fr_money(cents, currency))


def _table(rows: list[list[str]], widths: list[float], numeric_from: int) -> Table:
    table = Table([[pdf_text(str(c)) for c in row] for row in rows], colWidths=widths,
                  repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8.5),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f4f7f7")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor("#c8c8c8")),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _chart(report, width: float, height: float = 150) -> Drawing:
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 45, 40
    chart.width, chart.height = width - 60, height - 55
    chart.data = [[b.granted_cents / 100 for b in report.series] or [0],
                  [b.redeemed_cents / 100 for b in report.series] or [0]]
    labels = _bucket_labels(report) or [""]
    if len(labels) > 12:  # the first and the last only, as on the page
        labels = [label if i in (0, len(labels) - 1) else "" for i, label in
                  enumerate(labels)]
    chart.categoryAxis.categoryNames = labels
    chart.categoryAxis.labels.fontName = "Helvetica"
    chart.categoryAxis.labels.fontSize = 6.5
    chart.valueAxis.labels.fontName = "Helvetica"
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labelTextFormat = lambda value: f"{value:,.0f}".replace(",", " ")
    chart.bars[0].fillColor, chart.bars[1].fillColor = TEAL, BROWN
    chart.bars.strokeColor = None
    chart.groupSpacing, chart.barSpacing = 4, 1
    drawing.add(chart)
    for i, (colour, label) in enumerate(((TEAL, _("Attribués")), (BROWN, _("Utilisés")))):
        x = 45 + i * 110
        drawing.add(Rect(x, 2, 10, 8, fillColor=colour, strokeColor=None))
        drawing.add(String(x + 14, 3, pdf_text(label), fontName="Helvetica", fontSize=8))
    return drawing


def report_pdf(report) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm,
                            title=pdf_text(_("Rapport — %(name)s",
                                             name=report.programme.name)),
                            author=pdf_text(report.ccas_name), creator="Bou'Sol")
    styles = getSampleStyleSheet()
    width = A4[0] - 30 * mm
    t = _
    prog = report.programme

    def para(text: str, style: str = "Normal") -> Paragraph:
        return Paragraph(xml_escape(pdf_text(text)), styles[style])

    story = [
        para(t("Rapport du programme d'aide « %(name)s »", name=prog.name), "Title"),
        para(t("%(ccas)s — du %(start)s au %(end)s — édité le %(today)s",
               ccas=report.ccas_name, start=f"{report.date_from:%d/%m/%Y}",
               end=f"{report.date_to:%d/%m/%Y}", today=f"{report.generated_on:%d/%m/%Y}")),
        Spacer(1, 4 * mm),
    ]
    figures = [
        [t("Dans la période"), t("Nombre"), t("Montant")],
        [t("Bons attribués"), report.granted.count, _m(report.granted.cents)],
        [t("Utilisations"), report.redeemed.count, _m(report.redeemed.cents)],
        [t("Bons expirés"), report.expired.count, _m(report.expired.cents)],
        [t("Bons annulés"), report.cancelled.count, _m(report.cancelled.cents)],
        [t("Reliquats des bons à usage unique"), report.single_use_returned.count,
         _m(report.single_use_returned.cents)],
        [t("Financement reçu (euros)"), "", _m(report.funded_eur_cents, "EUR")],
        [t("Aujourd'hui"), "", ""],
        [t("Reste sur les bons ouverts"), report.outstanding.count,
         _m(report.outstanding.cents)],
        [t("dont bons échus en attente d'expiration"), report.overdue.count,
         _m(report.overdue.cents)],
        [t("Disponible dans le programme"), "", _m(report.available_cents)],
        [t("Budget du programme (euros)"), "", _m(prog.budget_eur_cents, "EUR")],
    ]
    summary = _table(figures, [width * 0.6, width * 0.15, width * 0.25], 1)
    summary.setStyle(TableStyle([("FONT", (0, 7), (-1, 7), "Helvetica-Bold", 8.5),
                                 ("BACKGROUND", (0, 7), (-1, 7), colors.HexColor("#f4f7f7"))]))
    story += [summary, Spacer(1, 4 * mm)]
    story += [para(t("Bou'Sols attribués et utilisés, par semaine") if report.step == "week"
                   else t("Bou'Sols attribués et utilisés, par mois"), "Heading3"),
              _chart(report, width), Spacer(1, 4 * mm)]
    story.append(para(t("Utilisations par filière"), "Heading3"))
    if report.by_filiere:
        story.append(_table(
            [[t("Filière"), t("Nombre"), t("Montant")]]
            + [[voucher_reports.filiere_name(line.filiere, t) or "—", line.count,
                _m(line.cents)] for line in report.by_filiere],
            [width * 0.6, width * 0.15, width * 0.25], 1))
    else:
        story.append(para(t("Aucune utilisation dans la période.")))
    story.append(para(t("Utilisations par prestataire"), "Heading3"))
    if report.by_prestataire:
        story.append(_table(
            [[t("Prestataire"), t("Code"), t("Filière"), t("Nombre"), t("Montant")]]
            + [[shop.name[:60], shop.code, voucher_reports.filiere_name(shop.filiere, t),
                shop.count, _m(shop.cents)] for shop in report.by_prestataire],
            [width * 0.36, width * 0.14, width * 0.2, width * 0.1, width * 0.2], 3))
    else:
        story.append(para(t("Aucune utilisation dans la période.")))
    doc.build(story)
    return buffer.getvalue()
