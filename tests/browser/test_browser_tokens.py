"""The two API token pages in headless Chromium, checked with axe-core (WCAG): a
soliste revokes its own token; the admin revokes a user's token."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.browser.helpers import assert_accessible, assert_clean_console, log_in
from tests.helpers import PASSWORD

pytestmark = pytest.mark.browser


def _token(base: str, username: str, label: str, **extra) -> dict:
    request = urllib.request.Request(  # noqa: S310 - our local server
        f"{base}/api/v1/tokens", method="POST",
        data=json.dumps({"username": username, "password": PASSWORD, "label": label,
                         **extra}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 - our local server
        return json.load(response)


def test_token_pages_are_accessible_and_revoke(live, page):
    base, ledger = live
    marie = ledger.soliste(name="Marie Lefebvre")
    admin = ledger.user("admin")
    _token(base, marie.username, "Téléphone de Marie")
    till = _token(base, marie.username, "Caisse du marché", scopes=["read", "pay"])
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    log_in(page, base, marie.username, "/compte/jetons")
    page.wait_for_url("**/compte/jetons")
    assert page.get_by_role("heading", level=1).inner_text() == "Mes jetons d'accès à l'API"
    assert_accessible(page)
    # Each token shows what it may do: the till's pays, nobody gave it "tokens".
    scopes = page.get_by_test_id(f"scopes-{till['id']}").get_by_role("listitem")
    assert scopes.all_inner_texts() == [
        "Consulter (soldes, écritures, bons, demandes)",
        "Payer (paiements, demandes de paiement reçues)"]
    page.get_by_role("button", name="Révoquer le jeton Téléphone de Marie").click()
    page.wait_for_url("**/compte/jetons")
    assert "Jeton révoqué" in page.get_by_role("status").inner_text()
    assert page.get_by_text("Téléphone de Marie").count() == 0
    assert_accessible(page)
    page.get_by_role("button", name="Se déconnecter").click()

    log_in(page, base, admin.username, f"/admin/utilisateurs/{marie.username}/jetons")
    page.wait_for_url(f"**/admin/utilisateurs/{marie.username}/jetons")
    assert_accessible(page)
    page.get_by_role("button", name="Révoquer le jeton Caisse du marché").click()
    page.wait_for_url(f"**/admin/utilisateurs/{marie.username}/jetons")
    assert page.get_by_test_id("no-tokens").is_visible()
    assert_accessible(page)
    assert_clean_console(console)
