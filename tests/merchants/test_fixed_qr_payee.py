"""Whom a fixed QR code pays (payment_requests.fixed_qr_payee): an approved prestataire
only; anything else is "not found", with nothing said about who is not approved."""

from __future__ import annotations

import sqlalchemy as sa

from bousol.ledger.merchants import payment_requests


def _set_status(ledger, code: str, status: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE parties SET status = :s WHERE code = :c"),
                     {"s": status, "c": code})


def test_an_approved_prestataire_is_paid_and_no_one_else(ledger):
    baker = ledger.prestataire(name="Boulangerie du port")
    marie = ledger.soliste()
    with ledger.engine.connect() as conn:
        found = payment_requests.fixed_qr_payee(conn, baker.party_code)
        assert found == payment_requests.FixedQrPayee(
            baker.party_code, "Boulangerie du port", "alimentation", found.commune)
        assert payment_requests.fixed_qr_payee(conn, marie.party_code) is None
        assert payment_requests.fixed_qr_payee(conn, "P-999999") is None
        for forged in ("P-" + "0" * 40, None, 12, ""):
            assert payment_requests.fixed_qr_payee(conn, forged) is None
    for status in ("suspended", "submitted", "draft", "refused"):
        _set_status(ledger, baker.party_code, status)
        with ledger.engine.connect() as conn:
            assert payment_requests.fixed_qr_payee(conn, baker.party_code) is None, status
