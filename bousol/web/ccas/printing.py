"""Printing paper aid vouchers: A4 sheets of eight (two columns, four rows, dashed cut
lines), as a print-ready page and as a PDF, and each voucher's QR code.

A printed voucher carries what a till needs — the CCAS, the programme, the amount, the
last valid day, the filières, the code with its check character and its QR code (the
link a prestataire's phone opens to redeem it) — and never who it was given to: the
paper goes from hand to hand. Only open paper vouchers print: an earmarked one lives on
a soliste's account, a closed one is worth nothing.
"""

from __future__ import annotations

import io
import re

from flask import Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas
from werkzeug.routing import BuildError

from bousol.ledger.ccas import vouchers
from bousol.web import current_actor, qr, role_required, unit_of_work
from bousol.web.ccas.views import bp
from bousol.web.formatting import filiere_label, fr_money
from bousol.web.forms import or_404

PER_PAGE = 8  # 2 columns × 4 rows
COLUMNS, ROWS = 2, 4
MAX_IDS = 500  # ?bons=…: a batch prints with ?lot=
_ID_LIST = re.compile(r"[0-9]{1,10}(,[0-9]{1,10})*")


# ---------------------------------------------------------------- shared


def redemption_link(code: str) -> str:
    """What the voucher's QR code says: the prestataire's redemption page for it."""
    try:
        return url_for("merchant.voucher_redeem", code=code, _external=True)
    except BuildError:  # that page's route not there yet: the same address by hand
        return request.host_url.rstrip("/") + "/prestataire/bons/" + code


def _positive_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 10):
        abort(400)
    number = int(text)
    if not 0 < number < 2**31:
        abort(404)
    return number


def _requested() -> tuple[list[vouchers.VoucherView], dict[str, str]]:
    """The vouchers named by ``?lot=`` or ``?bons=`` (the acting CCAS's own only), and
    the query to repeat in the PDF link. 400 for a malformed query, 404 for nothing."""
    lot, ids = request.args.get("lot"), request.args.get("bons")
    if (lot is None) == (ids is None):
        abort(400)
    with unit_of_work(read_only=True) as uow:
        with or_404():
            if lot is not None:
                found = vouchers.vouchers_of_batch(uow.conn, current_actor(),
                                                   _positive_id(lot.strip()))
                query = {"lot": lot.strip()}
            else:
                text = ids.replace(" ", "")
                if not _ID_LIST.fullmatch(text):
                    abort(400)
                numbers = list(dict.fromkeys(int(i) for i in text.split(",")))
                if len(numbers) > MAX_IDS:
                    abort(400)
                found = vouchers.vouchers_by_ids(uow.conn, current_actor(),
                                                 [n for n in numbers if 0 < n < 2**31])
                query = {"bons": ",".join(str(v.id) for v in found)}
    if not found:
        abort(404)
    return found, query


def _printable(view: vouchers.VoucherView) -> bool:
    return view.status == vouchers.OPEN and not view.earmarked


def _filieres_text(view: vouchers.VoucherView) -> str:
    if not view.filieres:
        return _("toutes filières")
    return ", ".join(filiere_label(f) for f in view.filieres)


def _sheets(items: list) -> list[list]:
    return [items[i:i + PER_PAGE] for i in range(0, len(items), PER_PAGE)]


# ---------------------------------------------------------------- HTML


@bp.route("/bons/impression")
@role_required("ccas")
def print_vouchers():
    found, query = _requested()
    printable = [v for v in found if _printable(v)]
    return render_template(
        "ccas/print_vouchers.html", title=_("Bons d'aide à imprimer"),
        sheets=_sheets(printable), count=len(printable), skipped=len(found) - len(printable),
        filieres_text=_filieres_text,
        pdf_url=url_for("ccas.print_vouchers_pdf", **query) if printable else None,
    )


@bp.route("/bons/<code>/qr.svg")
@role_required("ccas")
def voucher_qr(code: str):
    with unit_of_work(read_only=True) as uow:
        with or_404():
            view = vouchers.lookup(uow.conn, code)
            own = vouchers.vouchers_by_ids(uow.conn, current_actor(), [view.id])
    if not own:
        abort(404)
    return qr.svg_response(redemption_link(view.code))


# ---------------------------------------------------------------- PDF


def pdf_text(text: str) -> str:
    """Text Helvetica can draw (WinAnsi): no-break spaces become spaces, anything the
    encoding lacks becomes "?"."""
    text = text.replace("\u202f", " ").replace("\u00a0", " ")
    return text.encode("cp1252", errors="replace").decode("cp1252")


def _fit(text: str, font: str, size: float, width: float) -> str:
    """The text cut with an ellipsis so that it fits the width on one line."""
    text = pdf_text(text)
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def draw_qr(pdf: canvas.Canvas, value: str, x: float, y: float, size: float) -> None:
    widget = QrCodeWidget(value, barLevel="M", barBorder=4)
    left, bottom, right, top = widget.getBounds()
    width, height = right - left, top - bottom
    drawing = Drawing(size, size, transform=[size / width, 0, 0, size / height, 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, x, y)


def _draw_voucher(pdf: canvas.Canvas, view: vouchers.VoucherView, x: float, y: float,
                  w: float, h: float) -> None:
    pad, qr_size = 5 * mm, 30 * mm
    text_w = w - 2 * pad - qr_size - 3 * mm
    top = y + h - pad
    pdf.setFillColorRGB(0.043, 0.369, 0.388)  # the brand's teal
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(x + pad, top - 10, _fit(_("Bon d'aide") + " — " + view.ccas_name,
                                           "Helvetica-Bold", 10, w - 2 * pad))
    pdf.setFillColorRGB(0, 0, 0)
    pdf.setFont("Helvetica", 8)
    pdf.drawString(x + pad, top - 22, _fit(view.programme_name or _("Aide du CCAS"),
                                           "Helvetica", 8, w - 2 * pad))
    pdf.setFont("Helvetica-Bold", 24)
    pdf.drawString(x + pad, top - 52, _fit(fr_money(view.amount_cents, "BSOL"),
                                           "Helvetica-Bold", 24, text_w))
    line = top - 68
    if view.remaining_cents < view.amount_cents:
        pdf.setFont("Helvetica-Bold", 8)
        pdf.drawString(x + pad, line, _fit(_("Reste %(amount)s", amount=fr_money(
            view.remaining_cents, "BSOL")), "Helvetica-Bold", 8, text_w))
        line -= 12
    pdf.setFont("Helvetica", 9)
    pdf.drawString(x + pad, line, _fit(_("Valable jusqu'au %(day)s",
                                         day=f"{view.valid_until:%d/%m/%Y}"),
                                       "Helvetica", 9, text_w))
    line -= 13
    pdf.setFont("Helvetica", 8)
    lines = simpleSplit(pdf_text(_("Filières : %(list)s", list=_filieres_text(view))),
                        "Helvetica", 8, text_w)
    for part in lines[:3]:
        pdf.drawString(x + pad, line, part)
        line -= 10
    pdf.setFont("Courier-Bold", 10)
    pdf.drawString(x + pad, y + pad + 22, view.code)
    draw_qr(pdf, redemption_link(view.code), x + w - pad - qr_size, y + pad + 14, qr_size)
    pdf.setFont("Helvetica", 6.5)
    notice = simpleSplit(pdf_text(_("Non remboursable en euros — à utiliser chez les "
                                    "prestataires agréés Bou'Sol")), "Helvetica", 6.5,
                         w - 2 * pad)
    for i, part in enumerate(notice[:2]):
        pdf.drawString(x + pad, y + pad + 6 - i * 8, part)


def vouchers_pdf(views: list[vouchers.VoucherView]) -> bytes:
    buffer = io.BytesIO()
    page_w, page_h = A4
    margin = 10 * mm
    cell_w, cell_h = (page_w - 2 * margin) / COLUMNS, (page_h - 2 * margin) / ROWS
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(pdf_text(_("Bons d'aide")))
    pdf.setAuthor(pdf_text(views[0].ccas_name) if views else "Bou'Sol")
    pdf.setCreator("Bou'Sol")
    for sheet in _sheets(views):
        pdf.setDash(4, 3)
        pdf.setStrokeColorRGB(0.45, 0.45, 0.45)
        pdf.setLineWidth(0.5)
        pdf.rect(margin, margin, page_w - 2 * margin, page_h - 2 * margin)
        pdf.line(margin + cell_w, margin, margin + cell_w, page_h - margin)
        for row in range(1, ROWS):
            pdf.line(margin, margin + row * cell_h, page_w - margin, margin + row * cell_h)
        pdf.setDash()
        for index, view in enumerate(sheet):
            column, row = index % COLUMNS, index // COLUMNS
            x = margin + column * cell_w
            y = page_h - margin - (row + 1) * cell_h
            _draw_voucher(pdf, view, x, y, cell_w, cell_h)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@bp.route("/bons/impression.pdf")
@role_required("ccas")
def print_vouchers_pdf():
    found, query = _requested()
    printable = [v for v in found if _printable(v)]
    if not printable:
        abort(404)
    name = (f"bons-lot-{query['lot']}.pdf" if "lot" in query
            else f"bons-{printable[0].id}-{len(printable)}.pdf")
    return Response(vouchers_pdf(printable), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })
