"""Printing aid vouchers: A4 sheets of eight, as a page and as a PDF; what a voucher
shows (and never: who it was given to); the QR codes; who may print."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bousol.ledger.ccas import voucher_batches, vouchers
from bousol.ledger.kernel.clock import paris_today
from bousol.web.ccas.printing import pdf_text, redemption_link
from tests.helpers import PASSWORD, login

TODAY = paris_today()
PAGE_RE = re.compile(rb"/Type /Page\b(?!s)")


def plain(text: str) -> str:
    return text.replace("\u202f", " ").replace("\u00a0", " ")


@pytest.fixture
def printed(ledger):
    """Ten vouchers granted in one batch (names and references beside them), and a
    single one from the CCAS's own account (every filière)."""
    ledger.subsidy("100.00")
    ledger.phase("ccas", True)
    ccas = ledger.user("ccas", name="CCAS de Boulogne-sur-Mer")
    programme = vouchers.create_programme(
        ledger.uow(), ccas, name="Aide alimentaire hiver 2026", budget="1000",
        starts_on=TODAY, ends_on=TODAY + dt.timedelta(days=120),
        filieres=["alimentation", "mobilite-douce"], default_validity_days=60)
    ledger.exchange(ccas, "200.00", programme_id=programme.id)
    lines = "\n".join(f"SECRET-REF-{i};{10 + i},50;Mme Secrète-{i}" for i in range(10))
    batch = voucher_batches.grant_batch(ledger.uow(), ccas, text=lines, programme_id=programme.id)
    ledger.exchange(ccas, "20.00")
    single = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="SECRET-ALONE",
                            beneficiary_name="M. Caché", amount="7.00")
    return ledger, ccas, programme, batch, single


def _client(app, actor):
    client = app.test_client()
    login(client, actor.username, PASSWORD)
    return client


def test_print_page_shows_eight_vouchers_a_sheet_without_the_beneficiary(app, printed):
    ledger, ccas, _programme, batch, _single = printed
    client = _client(app, ccas)
    page = client.get(f"/ccas/bons/impression?lot={batch.batch_id}")
    assert page.status_code == 200
    html = plain(page.text)
    assert html.count('data-testid="voucher-sheet"') == 2
    sheets = html.split('data-testid="voucher-sheet"')[1:]
    assert [s.count('data-testid="voucher"') for s in sheets] == [8, 2]
    with ledger.engine.connect() as conn:
        views = vouchers.vouchers_by_ids(conn, ccas, batch.voucher_ids)
    for view in views:
        assert f'data-testid="voucher-code">{view.code}<' in html
        assert re.fullmatch(r"([0-9A-Z]{4}-){4}[0-9A-Z]", view.code)
        assert f'alt="QR code du bon {view.code}"' in html
        assert f'src="/ccas/bons/{view.code}/qr.svg"' in html
    assert 'data-testid="voucher-amount">10,50 B<' in html
    assert 'data-testid="voucher-amount">19,50 B<' in html
    assert f"Valable jusqu'au {TODAY + dt.timedelta(days=60):%d/%m/%Y}" in html
    assert "Filières : Alimentation, Mobilité douce" in html
    assert html.count("CCAS de Boulogne-sur-Mer") >= 10
    assert "Aide alimentaire hiver 2026" in html
    assert "Non remboursable en euros — à utiliser chez les prestataires agréés Bou'Sol" in html
    assert "SECRET" not in html and "Secrète" not in html  # never who it was given to
    assert "print-vouchers.css" in html
    assert f'href="/ccas/bons/impression.pdf?lot={batch.batch_id}"' in html
    assert "Imprimer" in html


def test_print_by_ids_every_filiere_and_skipped_vouchers(app, printed):
    ledger, ccas, _programme, batch, single = printed
    vouchers.cancel(ledger.uow(), ccas, code=single.code)
    first = batch.voucher_ids[0]
    client = _client(app, ccas)
    page = client.get(f"/ccas/bons/impression?bons={first},{single.id}")
    html = plain(page.text)
    assert page.status_code == 200 and html.count('data-testid="voucher"') == 1
    assert 'data-testid="print-skipped"' in html and single.code not in html
    fresh = vouchers.grant(ledger.uow(), ccas, beneficiary_ref="SECRET-2", amount="5.00")
    html = plain(client.get(f"/ccas/bons/impression?bons={fresh.id}").text)
    assert "Filières : toutes filières" in html and "Aide du CCAS" in html
    assert "SECRET" not in html
    # Only closed ones: a page that says so, and no PDF.
    page = client.get(f"/ccas/bons/impression?bons={single.id}")
    assert page.status_code == 200 and "pdf-link" not in page.text
    assert client.get(f"/ccas/bons/impression.pdf?bons={single.id}").status_code == 404


def test_print_pdf(app, printed):
    _ledger, ccas, _programme, batch, _single = printed
    client = _client(app, ccas)
    response = client.get(f"/ccas/bons/impression.pdf?lot={batch.batch_id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="bons-lot-{batch.batch_id}.pdf"')
    assert response.data.startswith(b"%PDF")
    assert len(PAGE_RE.findall(response.data)) == 2
    ids = ",".join(str(i) for i in batch.voucher_ids[:8])
    eight = client.get(f"/ccas/bons/impression.pdf?bons={ids}")
    assert eight.status_code == 200 and len(PAGE_RE.findall(eight.data)) == 1


@pytest.mark.parametrize("query, status", [
    ("", 400), ("?lot=1&bons=1", 400), ("?lot=abc", 400), ("?lot=-1", 400), ("?lot=0", 404),
    ("?lot=99999999999999999999", 400), ("?lot=4294967296", 404), ("?lot=9999", 404),
    ("?bons=", 400), ("?bons=1,x", 400), ("?bons=1;2", 400), ("?bons=0", 404),
    ("?bons=4294967296", 404), ("?bons=" + ",".join(str(i) for i in range(1, 600)), 400),
    ("?bons=99999", 404),
])
def test_bad_queries_are_400_or_404(app, printed, query, status):
    _ledger, ccas, *_rest = printed
    client = _client(app, ccas)
    assert client.get(f"/ccas/bons/impression{query}").status_code == status
    assert client.get(f"/ccas/bons/impression.pdf{query}").status_code == status


def test_qr_code_of_a_voucher(app, printed):
    _ledger, ccas, _programme, _batch, single = printed
    client = _client(app, ccas)
    response = client.get(f"/ccas/bons/{single.code}/qr.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.data.lstrip().startswith(b"<")
    assert client.get(f"/ccas/bons/{single.code.lower().replace('-', '')}/qr.svg"
                      ).status_code == 200
    for bad in ("ZZZZ-ZZZZ-ZZZZ-ZZZZ-Z", "nope", "x" * 300):
        assert client.get(f"/ccas/bons/{bad}/qr.svg").status_code == 404
    with app.test_request_context(base_url="https://bousol.example"):
        link = redemption_link(single.code)
    assert link == f"https://bousol.example/prestataire/bons/{single.code}"


def test_only_the_granting_ccas_prints(app, printed):
    ledger, _ccas, _programme, batch, single = printed
    other = ledger.user("ccas", name="CCAS d'Outreau")
    client = _client(app, other)
    assert client.get(f"/ccas/bons/impression?lot={batch.batch_id}").status_code == 404
    assert client.get(f"/ccas/bons/impression.pdf?lot={batch.batch_id}").status_code == 404
    assert client.get(f"/ccas/bons/impression?bons={single.id}").status_code == 404
    assert client.get(f"/ccas/bons/{single.code}/qr.svg").status_code == 404
    shop = _client(app, ledger.prestataire(name="Épicerie"))
    assert shop.get(f"/ccas/bons/impression?lot={batch.batch_id}").status_code == 403
    assert shop.get(f"/ccas/bons/{single.code}/qr.svg").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"/ccas/bons/impression?lot={batch.batch_id}").status_code == 302


def test_pdf_text_keeps_to_winansi():
    assert pdf_text("1\u202f234,50\u00a0B") == "1 234,50 B"
    assert pdf_text("Œuvre — « été »") == "Œuvre — « été »"
    assert pdf_text("Ĳ 🎉") == "? ?"
