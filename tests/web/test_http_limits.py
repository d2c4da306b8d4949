"""HTTP-level guards (issue 13): a body over the limit is a 413 page on every route, the
production config sends Strict-Transport-Security, signed-in pages are not stored."""

from __future__ import annotations

import pytest

from bousol.app import create_app
from config import ProductionConfig
from tests.helpers import PASSWORD, csrf_token, login

TOO_BIG = "x" * (2 * 1024 * 1024 + 1)  # MAX_CONTENT_LENGTH is 2 MiB


@pytest.mark.parametrize("path", ["/connexion", "/agrement", "/annuaire", "/langue",
                                  "/nulle-part", "/comptoir/adherents/nouveau"])
def test_a_body_over_the_limit_is_a_413_page_anonymous(client, path):
    response = client.post(path, data={"field": TOO_BIG})
    assert response.status_code == 413
    assert "trop volumineuses" in response.text and "<html" in response.text


def test_a_body_over_the_limit_is_a_413_page_signed_in(client, ledger):
    clerk = ledger.user("bank")
    login(client, clerk.username, PASSWORD)
    page = client.get("/comptoir/adherents/nouveau")
    response = client.post("/comptoir/adherents/nouveau",
                           data={"csrf_token": csrf_token(page.text), "name": TOO_BIG})
    assert response.status_code == 413 and "trop volumineuses" in response.text
    assert clerk.username in response.text  # the page, with its header, not a bare error


def test_the_413_page_speaks_english_when_asked(client):
    page = client.get("/connexion")
    client.post("/langue", data={"csrf_token": csrf_token(page.text), "lang": "en",
                                 "next": "/connexion"})
    response = client.post("/connexion", data={"field": TOO_BIG})
    assert response.status_code == 413 and "too large" in response.text


def test_the_api_answers_413_in_json(client):
    response = client.post("/api/v1/tokens", data=TOO_BIG, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"


def test_signed_in_pages_are_not_stored(client, ledger):
    marie = ledger.soliste()
    anonymous = client.get("/connexion")
    assert "no-store" not in anonymous.headers.get("Cache-Control", "")
    login(client, marie.username, PASSWORD)
    for path in ("/soliste/", "/nulle-part"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    static = client.get("/static/css/app.css")
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_production_sends_strict_transport_security(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-for-this-test-0123456789")
    monkeypatch.setenv("BOUSOL_PUBLIC_URL", "https://bousol.example.org")
    monkeypatch.delenv("BOUSOL_CLOCK", raising=False)
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/p.db")
    response = app.test_client().get("/static/css/app.css")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_development_and_tests_send_no_hsts(client):
    # Over plain http://127.0.0.1 an HSTS header would lock the developer out.
    assert "Strict-Transport-Security" not in client.get("/static/css/app.css").headers
