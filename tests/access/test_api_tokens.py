"""API tokens: issue, expiry, revocation by the owner and by an admin, hashed storage,
rate limits (429 + Retry-After), and the two token pages."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bousol.ledger.access import api_tokens, logins
from bousol.ledger.models import Role, utcnow
from tests.helpers import PASSWORD, csrf_token, login


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
    assert set(body) == {"token", "expires_at", "id", "scopes"}
    assert body["scopes"] == ["read", "pay", "tokens"]  # the role's full set by default
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
        conn.execute(sa.text("UPDATE api_tokens SET created_at = :long_ago, "
                             "expires_at = :past"),
                     {"long_ago": utcnow() - dt.timedelta(days=31),
                      "past": utcnow() - dt.timedelta(seconds=1)})
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

    from bousol.ledger.ccas import vouchers
    from bousol.ledger.kernel.clock import paris_today

    ledger.subsidy("100.00")
    ccas = ledger.user("ccas")
    ledger.exchange(ccas, "20.00")
    grocer = ledger.prestataire()
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"username": ccas.username,
                                                "password": PASSWORD}).json["token"]
    body = {"amount": "10.00", "beneficiary_ref": "DOS-1",
            "valid_until": (paris_today() + dt.timedelta(days=30)).isoformat()}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "grant-1"}
    first = client.post("/api/v1/vouchers", json=body, headers=headers)
    assert first.status_code == 201
    vouchers.redeem(ledger.uow(), grocer, code=first.json["code"], amount="4")
    again = client.post("/api/v1/vouchers", json=body, headers=headers)
    assert (again.status_code, again.json) == (201, first.json)


# ---------------------------------------------------------------- scopes and lifetime


def _denied_for_scope(response, scope: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json["error"]["code"] == "insufficient_scope"
    assert f'scope="{scope}"' in response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_read_only_token_reads_and_moves_no_money(client, ledger):
    ledger.subsidy("100.00")
    marie, shop = ledger.soliste(), ledger.prestataire()
    ledger.exchange(marie, "20.00")
    read = _issue(client, marie.username, scopes=["read"]).json
    assert read["scopes"] == ["read"]
    assert client.get("/api/v1/me", headers=_auth(read["token"])).status_code == 200
    refused = client.post("/api/v1/payments", headers=_auth(read["token"]),
                          json={"payee": shop.party_code, "amount": "1.00"})
    _denied_for_scope(refused, "pay")
    assert ledger.balance(marie) == 2100
    # Another token of marie's with "pay" pays; the read-only one cannot revoke it.
    payer = _issue(client, marie.username, scopes=["pay", "read"]).json
    assert payer["scopes"] == ["read", "pay"]  # stored and shown in SCOPES order
    paid = client.post("/api/v1/payments", headers=_auth(payer["token"]),
                       json={"payee": shop.party_code, "amount": "1.00"})
    assert paid.status_code == 201, paid.text
    _denied_for_scope(client.delete(f"/api/v1/tokens/{payer['id']}",
                                    headers=_auth(read["token"])), "tokens")
    listed = client.get("/api/v1/tokens", headers=_auth(read["token"])).json["tokens"]
    assert [(t["id"], t["scopes"]) for t in listed] == [(payer["id"], ["read", "pay"]),
                                                         (read["id"], ["read"])]
    # Any token may revoke itself.
    assert client.delete("/api/v1/tokens/current",
                         headers=_auth(read["token"])).status_code == 204


def _user(ledger, role: str):
    return ledger.prestataire() if role == "prestataire" else ledger.user(role)


# Every call that needs a token, the role that makes it, and the scope it needs: a token
# with every other scope of that role is refused with 403 insufficient_scope.
SCOPE_TABLE = [
    ("soliste", "GET", "/api/v1/me", "read"),
    ("soliste", "GET", "/api/v1/me/entries", "read"),
    ("soliste", "GET", "/api/v1/tokens", "read"),
    ("soliste", "POST", "/api/v1/payments", "pay"),
    ("soliste", "POST", "/api/v1/payment-requests/1/pay", "pay"),
    ("soliste", "DELETE", "/api/v1/tokens/1", "tokens"),
    ("prestataire", "POST", "/api/v1/payments", "pay"),
    ("prestataire", "POST", "/api/v1/payment-requests", "till"),
    ("prestataire", "GET", "/api/v1/payment-requests/1", "read"),
    ("prestataire", "GET", "/api/v1/vouchers/7K3M-Q9XD-2HPT-W4RB-4", "read"),
    ("prestataire", "POST", "/api/v1/vouchers/7K3M-Q9XD-2HPT-W4RB-4/redemptions", "till"),
    ("bank", "POST", "/api/v1/exchanges", "desk"),
    ("bank", "POST", "/api/v1/reconversions", "desk"),
    ("bank", "GET", "/api/v1/ledger/summary", "read"),
    ("ccas", "POST", "/api/v1/vouchers", "vouchers"),
    ("ccas", "GET", "/api/v1/vouchers/7K3M-Q9XD-2HPT-W4RB-4", "read"),
    ("admin", "GET", "/api/v1/ledger/summary", "read"),
    ("admin", "DELETE", "/api/v1/tokens/1", "tokens"),
]


@pytest.mark.parametrize(("role", "method", "path", "scope"), SCOPE_TABLE)
def test_each_call_needs_its_scope(client, ledger, role, method, path, scope):
    user = _user(ledger, role)
    others = [s for s in api_tokens.ROLE_SCOPES[Role(role)] if s != scope]
    token = _issue(client, user.username, scopes=others).json["token"]
    response = client.open(path, method=method, headers=_auth(token), json={})
    _denied_for_scope(response, scope)


def test_the_scope_table_covers_every_call():
    from bousol.web.api import ANY, REGISTRY

    needed = {(op.method, op.scope) for op in REGISTRY if op.roles is not None
              and op.scope != ANY}
    assert needed <= {(method, scope) for _role, method, _path, scope in SCOPE_TABLE}
    # A role's full set holds every scope its calls need.
    for op in REGISTRY:
        if op.roles not in (None, ANY) and op.scope != ANY:
            for role in op.roles:
                assert op.scope in api_tokens.ROLE_SCOPES[Role(role)], (op.endpoint, role)


def test_default_scopes_are_the_roles_full_set(client, ledger):
    for role, expected in api_tokens.ROLE_SCOPES.items():
        user = _user(ledger, role.value)
        assert _issue(client, user.username).json["scopes"] == list(expected), role


@pytest.mark.parametrize(("scopes", "code"), [
    (["desk"], "invalid_scope"),          # a soliste's token cannot get the desk's power
    (["read", "vouchers"], "invalid_scope"),
    (["read", "read"], "invalid_scope"),
    ([], "invalid_input"),
    (["admin"], "invalid_input"),         # no such scope
    ("read", "invalid_input"),
])
def test_scopes_beyond_the_role_are_refused(client, ledger, scopes, code):
    marie = ledger.soliste()
    response = _issue(client, marie.username, scopes=scopes)
    assert response.status_code == 422, response.text
    assert response.json["error"]["code"] == code
    assert ledger.count("api_tokens") == 0


def test_the_lifetime_is_chosen_within_the_maximum(app, client, ledger):
    marie = ledger.soliste()
    body = _issue(client, marie.username, expires_in_days=7).json
    left = dt.datetime.fromisoformat(body["expires_at"]) - utcnow()
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
    for days in (0, 31, -1, "7", 1.5, True):
        response = _issue(client, marie.username, expires_in_days=days)
        assert response.status_code == 422, (days, response.text)
        assert response.json["error"]["code"] == "invalid_input"
    app.config["API_TOKEN_TTL_DAYS"] = 2  # a lower maximum, stated by the OpenAPI document
    assert _issue(client, marie.username, expires_in_days=3).status_code == 422
    assert _issue(client, marie.username, expires_in_days=2).status_code == 201
    document = client.get("/api/v1/openapi.json").json
    days = document["components"]["schemas"]["TokenIn"]["properties"]["expires_in_days"]
    assert [b["maximum"] for b in days["anyOf"] if b.get("type") == "integer"] == [2]


def test_the_database_refuses_unknown_or_repeated_scopes(ledger):
    marie = ledger.soliste()
    now = utcnow()
    row = {"user_id": marie.user_id, "created_at": now,
           "expires_at": now + dt.timedelta(days=1), "created_from": "test"}
    insert = sa.text("INSERT INTO api_tokens (user_id, token_hash, created_at, expires_at, "
                     "created_from, scopes) VALUES (:user_id, :hash, :created_at, "
                     ":expires_at, :created_from, :scopes)")
    with ledger.engine.begin() as conn:
        conn.execute(insert, {**row, "hash": "a" * 64, "scopes": "read pay tokens"})
    for number, scopes in enumerate(["", "read read", "admin", "read  pay", " read",
                                     "readpay"]):
        with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
            conn.execute(insert, {**row, "hash": f"{number:064d}", "scopes": scopes})
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        conn.execute(insert, {**row, "hash": "b" * 64, "scopes": "read",
                              "expires_at": now - dt.timedelta(seconds=1)})


def test_scope_names_agree_with_the_database_check():
    from bousol.ledger.models import API_TOKEN_SCOPE_NAMES

    assert tuple(api_tokens.SCOPES) == API_TOKEN_SCOPE_NAMES


def test_tokens_issued_before_scopes_get_their_roles_full_set(app, client, ledger):
    from flask_migrate import downgrade, upgrade

    from bousol.extensions import db

    ledger.subsidy("100.00")
    marie, shop = ledger.soliste(), ledger.prestataire()
    clerk = ledger.user("bank")
    ledger.exchange(marie, "20.00")
    marie_token = _issue(client, marie.username).json["token"]
    clerk_token = _issue(client, clerk.username).json["token"]
    with app.app_context():
        downgrade(revision="0009_association")
        db.session.remove()
        db.engine.dispose()
        assert "scopes" not in {c["name"] for c in sa.inspect(db.engine).get_columns(
            "api_tokens")}
        upgrade()
        db.engine.dispose()
    ledger.engine.dispose()
    with ledger.engine.connect() as conn:
        stored = dict(conn.execute(sa.text(
            "SELECT u.username, t.scopes FROM api_tokens t JOIN users u ON u.id = t.user_id"
        )).all())
    assert stored == {marie.username: "read pay tokens", clerk.username: "read desk tokens"}
    paid = client.post("/api/v1/payments", headers=_auth(marie_token),
                       json={"payee": shop.party_code, "amount": "1.00"})
    assert paid.status_code == 201, paid.text
    assert client.get("/api/v1/ledger/summary",
                      headers=_auth(clerk_token)).status_code == 200


def test_token_pages_show_each_tokens_scopes(client, ledger):
    marie = ledger.soliste()
    _issue(client, marie.username, label="Tableau de bord", scopes=["read"])
    _issue(client, marie.username, label="Caisse", scopes=["read", "pay"])
    login(client, marie.username, PASSWORD)
    page = client.get("/compte/jetons").text
    rows = {label: page.split(f">{label}<", 1)[1].split("</tr>", 1)[0]
            for label in ("Tableau de bord", "Caisse")}
    assert "Consulter" in rows["Tableau de bord"] and "Payer" not in rows["Tableau de bord"]
    assert "Consulter" in rows["Caisse"] and "Payer" in rows["Caisse"]
    with client.session_transaction() as session:
        session["lang"] = "en"
    assert "Pay (" in client.get("/compte/jetons").text
