"""API tokens: issue, expiry, revocation by the owner and by an admin, hashed storage,
rate limits (429 + Retry-After), and the two token pages."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from bousol.ledger import api_tokens, logins
from bousol.ledger.models import utcnow
from tests.helpers import csrf_token, login

PASSWORD = "password-123"


def _issue(client, username: str, password: str = PASSWORD, **extra):
    return client.post("/api/v1/tokens",
                       json={"username": username, "password": password, **extra})


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_issue_a_token_and_call_with_it(client, ledger):
    marie = ledger.soliste(name="Marie Lefebvre")
    response = _issue(client, marie.username, label="Téléphone de Marie")
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"token", "expires_at", "id"}
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(days=29) < expires - utcnow() <= dt.timedelta(days=30)
    me = client.get("/api/v1/me", headers=_auth(body["token"]))
    assert me.status_code == 200
    assert me.json == {"username": marie.username, "role": "soliste",
                       "party": {"code": marie.party_code, "kind": "soliste",
                                 "name": "Marie Lefebvre"},
                       "balances": {"BSOL": "0.00", "EUR": "0.00"}}


def test_wrong_password_is_401(client, ledger):
    marie = ledger.soliste()
    response = _issue(client, marie.username, "wrong-password")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_credentials"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _issue(client, "nobody", PASSWORD).status_code == 401


def test_the_database_never_holds_the_token(client, ledger):
    marie = ledger.soliste()
    token = _issue(client, marie.username).json["token"]
    with ledger.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM api_tokens"))]
    assert len(rows) == 1
    assert rows[0]["token_hash"] == api_tokens.hash_token(token)
    assert len(rows[0]["token_hash"]) == 64
    assert all(token not in str(value) for row in rows for value in row.values())
    assert rows[0]["created_from"] == "127.0.0.1"


def test_an_expired_token_is_refused(client, ledger, app):
    marie = ledger.soliste()
    token = _issue(client, marie.username).json["token"]
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET expires_at = :past"),
                     {"past": utcnow() - dt.timedelta(seconds=1)})
    response = client.get("/api/v1/me", headers=_auth(token))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_ttl_comes_from_the_config(app, ledger):
    app.config["API_TOKEN_TTL_DAYS"] = 2
    marie = ledger.soliste()
    body = _issue(app.test_client(), marie.username).json
    left = dt.datetime.fromisoformat(body["expires_at"]) - utcnow()
    assert dt.timedelta(days=1) < left <= dt.timedelta(days=2)


def test_a_deactivated_user_token_stops_working(client, ledger):
    marie = ledger.soliste()
    token = _issue(client, marie.username).json["token"]
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE users SET active = :no"), {"no": False})
    assert client.get("/api/v1/me", headers=_auth(token)).status_code == 401


def test_owner_revokes_its_current_token_and_others(client, ledger):
    marie = ledger.soliste()
    first = _issue(client, marie.username).json
    second = _issue(client, marie.username).json
    listed = client.get("/api/v1/tokens", headers=_auth(first["token"])).json["tokens"]
    assert [(t["id"], t["current"]) for t in listed] == [(second["id"], False),
                                                          (first["id"], True)]
    assert client.delete(f"/api/v1/tokens/{second['id']}",
                         headers=_auth(first["token"])).status_code == 204
    assert client.get("/api/v1/me", headers=_auth(second["token"])).status_code == 401
    assert client.delete("/api/v1/tokens/current",
                         headers=_auth(first["token"])).status_code == 204
    assert client.get("/api/v1/me", headers=_auth(first["token"])).status_code == 401


def test_nobody_else_revokes_a_token_but_an_admin(client, ledger):
    marie, karim = ledger.soliste(), ledger.soliste()
    admin = ledger.user("admin")
    marie_token = _issue(client, marie.username).json
    karim_token = _issue(client, karim.username).json["token"]
    response = client.delete(f"/api/v1/tokens/{marie_token['id']}", headers=_auth(karim_token))
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    admin_token = _issue(client, admin.username).json["token"]
    assert client.delete(f"/api/v1/tokens/{marie_token['id']}",
                         headers=_auth(admin_token)).status_code == 204
    assert client.get("/api/v1/me", headers=_auth(marie_token["token"])).status_code == 401
    with ledger.engine.connect() as conn:
        revoked_by = conn.execute(sa.text("SELECT revoked_by_user_id FROM api_tokens "
                                          "WHERE id = :id"), {"id": marie_token["id"]}).scalar()
    assert revoked_by == admin.user_id


def test_failures_per_username_are_throttled_with_retry_after(client, ledger):
    marie = ledger.soliste()
    for _ in range(logins.MAX_FAILURES_PER_USERNAME):
        assert _issue(client, marie.username, "wrong-password").status_code == 401
    response = _issue(client, marie.username)  # even the right password waits
    assert response.status_code == 429
    assert response.json["error"]["code"] == "too_many_attempts"
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60 + 1


def test_failures_per_address_are_throttled(client, ledger):
    marie = ledger.soliste()
    for number in range(logins.MAX_FAILURES_PER_ADDRESS):
        assert _issue(client, f"stranger{number}", "wrong-password").status_code == 401
    response = _issue(client, marie.username)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    other = client.post("/api/v1/tokens", json={"username": marie.username,
                                                "password": PASSWORD},
                        environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 201


def test_successful_issues_are_capped_per_user(client, ledger, monkeypatch):
    monkeypatch.setattr(api_tokens, "MAX_ISSUED_PER_USER", 3)
    marie = ledger.soliste()
    for _ in range(3):
        assert _issue(client, marie.username).status_code == 201
    response = _issue(client, marie.username)
    assert response.status_code == 429
    assert 3500 < int(response.headers["Retry-After"]) <= 3601


def test_token_request_validation(client, ledger):
    for body in ({"username": "a"}, {"username": "a", "password": "b", "x": 1},
                 {"username": 1, "password": "b"}):
        response = client.post("/api/v1/tokens", json=body)
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_input"


# ---------------------------------------------------------------- the pages


def test_account_page_lists_and_revokes_own_tokens(client, ledger):
    marie = ledger.soliste()
    token = _issue(client, marie.username, label="Caisse 1").json
    login(client, marie.username, PASSWORD)
    page = client.get("/compte/jetons")
    assert page.status_code == 200
    assert "Caisse 1" in page.text
    assert token["token"] not in page.text
    # Without the CSRF token: refused.
    assert client.post("/compte/jetons", data={"token_id": token["id"]}).status_code == 400
    done = client.post("/compte/jetons", data={"csrf_token": csrf_token(page.text),
                                               "token_id": token["id"]},
                       follow_redirects=True)
    assert done.status_code == 200
    assert "Jeton révoqué" in done.text and "Aucun jeton actif" in done.text
    assert client.get("/api/v1/me", headers=_auth(token["token"])).status_code == 401


def test_account_page_cannot_revoke_another_users_token(client, ledger):
    marie, karim = ledger.soliste(), ledger.soliste()
    token = _issue(client, karim.username).json
    login(client, marie.username, PASSWORD)
    page = client.get("/compte/jetons")
    refused = client.post("/compte/jetons", data={"csrf_token": csrf_token(page.text),
                                                  "token_id": token["id"]})
    assert refused.status_code == 422
    assert client.get("/api/v1/me", headers=_auth(token["token"])).status_code == 200


def test_admin_page_lists_and_revokes_a_users_tokens(client, ledger):
    admin, marie = ledger.user("admin"), ledger.soliste()
    token = _issue(client, marie.username, label="Script compta").json
    login(client, admin.username, PASSWORD)
    page = client.get(f"/admin/utilisateurs/{marie.username}/jetons")
    assert page.status_code == 200 and "Script compta" in page.text
    done = client.post(f"/admin/utilisateurs/{marie.username}/jetons",
                       data={"csrf_token": csrf_token(page.text), "token_id": token["id"]},
                       follow_redirects=True)
    assert "Jeton révoqué" in done.text
    assert client.get("/api/v1/me", headers=_auth(token["token"])).status_code == 401
    assert client.get("/admin/utilisateurs/personne/jetons").status_code == 404


def test_admin_page_is_for_admins_only(client, ledger):
    marie = ledger.soliste()
    login(client, marie.username, PASSWORD)
    assert client.get(f"/admin/utilisateurs/{marie.username}/jetons").status_code == 403


def test_a_grant_replayed_after_a_redemption_answers_the_first_body(app, ledger):
    """Same key, same body: the first response, even once the voucher was partly spent."""
    import datetime as dt

    from bousol.ledger import vouchers
    from bousol.ledger.clock import paris_today

    ledger.subsidy("100.00")
    ccas = ledger.user("ccas")
    ledger.exchange(ccas, "20.00")
    grocer = ledger.prestataire()
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"username": ccas.username,
                                                "password": "password-123"}).json["token"]
    body = {"amount": "10.00", "beneficiary_ref": "DOS-1",
            "valid_until": (paris_today() + dt.timedelta(days=30)).isoformat()}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "grant-1"}
    first = client.post("/api/v1/vouchers", json=body, headers=headers)
    assert first.status_code == 201
    vouchers.redeem(ledger.uow(), grocer, code=first.json["code"], amount="4")
    again = client.post("/api/v1/vouchers", json=body, headers=headers)
    assert (again.status_code, again.json) == (201, first.json)
