"""Ids beyond the database's integers and NUL characters answer 4xx, never 500."""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, csrf_token, login

HUGE = 2**64


@pytest.fixture
def merchant(client, ledger):
    baker = ledger.prestataire()
    login(client, baker.username, PASSWORD)
    return client


@pytest.mark.parametrize("path", [
    f"/prestataire/demandes/{HUGE}", f"/prestataire/demandes/{HUGE}/etat",
    f"/prestataire/demandes/{2**31}/qr.svg", f"/prestataire/paiements/{HUGE}/rembourser",
    f"/prestataire/recu/{HUGE}", f"/payer/recu/{2**63}",
])
def test_ids_too_large_for_the_database_are_not_found(merchant, path):
    assert merchant.get(path).status_code == 404


@pytest.mark.parametrize("path", [
    "/annuaire?filiere=%00", "/annuaire/P-%0000001", "/annuaire?q=a%00b",
    "/payer/abc%00def", "/payer/commerce/P-%0000001",
])
def test_nul_characters_are_a_bad_request(merchant, path):
    assert merchant.get(path).status_code == 400


def test_nul_in_a_form_is_a_bad_request(client, ledger):
    boss = ledger.user("admin")
    login(client, boss.username, PASSWORD)
    page = client.get("/admin/phases")
    answer = client.post("/admin/phases", data={
        "csrf_token": csrf_token(page.text), "phase": "b2b", "on": "on",
        "reason": "Conseil\x00collégial"})
    assert answer.status_code == 400
    assert "Conseil" not in client.get("/admin/phases").text  # nothing recorded
