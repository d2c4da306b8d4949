"""Input validation of the JSON API: unknown fields, wrong types, oversized bodies,
malformed JSON, bad Idempotency-Key headers, the error shape, and no 500 anywhere."""

from __future__ import annotations

import io

import pytest

from tests.helpers import PASSWORD


def _token(client, username: str) -> dict[str, str]:
    response = client.post("/api/v1/tokens", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json['token']}"}


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


@pytest.fixture
def soliste(ledger, client):
    ledger.subsidy("100.00")
    marie = ledger.soliste()
    shop = ledger.prestataire()
    ledger.exchange(marie, "40.00")
    return marie, shop, _token(client, marie.username)


def test_unknown_field_is_refused(soliste, client, ledger):
    marie, shop, auth = soliste
    response = client.post("/api/v1/payments", headers=auth,
                           json={"payee": shop.party_code, "amount": "1.00", "tip": "1"})
    body = _error(response, 422, "invalid_input")
    assert "tip" in body["error"]["message"]
    assert ledger.balance(marie) == 4200


@pytest.mark.parametrize("payload", [
    {"payee": 45, "amount": "1.00"},
    {"payee": None, "amount": "1.00"},
    {"payee": ["P-000001"], "amount": "1.00"},
    {"payee": "P-000001", "amount": "1.00", "memo": 12},
    {"amount": "1.00"},
])
def test_wrong_types_and_missing_fields_are_invalid_input(soliste, client, payload):
    _error(client.post("/api/v1/payments", headers=soliste[2], json=payload), 422,
           "invalid_input")


@pytest.mark.parametrize("amount", ["1.005", "-1", "0", "0.00", "1000000.01", "abc", True,
                                    None, [], {}, "", "1e3", "NaN"])
def test_bad_amounts_are_invalid_amount(soliste, client, amount):
    _marie, shop, auth = soliste
    _error(client.post("/api/v1/payments", headers=auth,
                       json={"payee": shop.party_code, "amount": amount}), 422, "invalid_amount")


def test_amount_as_number_is_read_as_a_decimal_never_a_float(soliste, client, ledger):
    _marie, shop, auth = soliste
    response = client.post("/api/v1/payments", headers=auth,
                           data=f'{{"payee": "{shop.party_code}", "amount": 0.29}}',
                           content_type="application/json")
    assert response.status_code == 201, response.text
    assert response.json["amount"] == "0.29"
    assert ledger.balance(shop) == 29
    _error(client.post("/api/v1/payments", headers=auth,
                       data=f'{{"payee": "{shop.party_code}", "amount": 0.299}}',
                       content_type="application/json"), 422, "invalid_amount")


@pytest.mark.parametrize("data", ['{"payee": ', "not json", "{'a': 1}", '{"a": NaN}',
                                  '{"amount": Infinity}', b"\xff\xfe{", "[" * 5000])
def test_malformed_json_is_400_invalid_json(soliste, client, data):
    _error(client.post("/api/v1/payments", headers=soliste[2], data=data,
                       content_type="application/json"), 400, "invalid_json")


@pytest.mark.parametrize("data", ["[]", '"text"', "12", "null"])
def test_a_body_that_is_not_an_object_is_invalid_input(soliste, client, data):
    _error(client.post("/api/v1/payments", headers=soliste[2], data=data,
                       content_type="application/json"), 422, "invalid_input")


def test_body_over_64_kib_is_413(soliste, client):
    _marie, shop, auth = soliste
    big = '{{"payee": "{}", "amount": "1.00", "memo": "{}"}}'.format(shop.party_code, "x" * 70_000)
    _error(client.post("/api/v1/payments", headers=auth, data=big,
                       content_type="application/json"), 413, "payload_too_large")
    # Without a Content-Length (chunked), the limit holds as the body is read.
    _error(client.post("/api/v1/payments", headers={**auth, "Transfer-Encoding": "chunked"},
                       input_stream=io.BytesIO(big.encode()),
                       environ_overrides={"wsgi.input_terminated": True},
                       content_type="application/json"), 413, "payload_too_large")


def test_memo_with_control_characters_is_refused(soliste, client):
    _marie, shop, auth = soliste
    _error(client.post("/api/v1/payments", headers=auth,
                       json={"payee": shop.party_code, "amount": "1.00", "memo": "a\u0000b"}),
           422, "invalid_input")


@pytest.mark.parametrize("key", ["", " ", "é", "a" * 256, "with space", "tab\there"])
def test_bad_idempotency_key_is_422(soliste, client, ledger, key):
    marie, shop, auth = soliste
    response = client.post("/api/v1/payments", headers={**auth, "Idempotency-Key": key},
                           json={"payee": shop.party_code, "amount": "1.00"})
    _error(response, 422, "invalid_idempotency_key")
    assert ledger.balance(marie) == 4200


def test_idempotency_key_replays_and_conflicts(soliste, client, ledger):
    marie, shop, auth = soliste
    headers = {**auth, "Idempotency-Key": "till-7-ticket-41"}
    body = {"payee": shop.party_code, "amount": "12.50"}
    first = client.post("/api/v1/payments", headers=headers, json=body)
    again = client.post("/api/v1/payments", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json == again.json
    assert ledger.balance(marie) == 4200 - 1250
    _error(client.post("/api/v1/payments", headers=headers,
                       json={**body, "amount": "12.51"}), 409, "idempotency_conflict")
    # A refusal is replayed too: same status, same body.
    refused = {**auth, "Idempotency-Key": "too-much"}
    one = client.post("/api/v1/payments", headers=refused,
                      json={"payee": shop.party_code, "amount": "999.00"})
    two = client.post("/api/v1/payments", headers=refused,
                      json={"payee": shop.party_code, "amount": "999.00"})
    _error(one, 422, "insufficient_funds")
    assert (two.status_code, two.json) == (one.status_code, one.json)


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/nowhere"), ("get", "/api/v1/"), ("get", "/api/v1"),
    ("post", "/api/v1/me"), ("put", "/api/v1/payments"), ("get", "/api/v1/vouchers/%00"),
    ("get", "/api/v1/payment-requests/99999999999/qr.png"),
    ("post", "/api/v1/payment-requests/-1/pay"), ("get", "/api/v1/me/entries?limit=%00"),
    ("get", "/api/v1/tokens/../me"), ("delete", "/api/v1/tokens/0"),
])
def test_odd_paths_answer_json_errors_never_500(soliste, client, method, path):
    response = getattr(client, method)(path, headers=soliste[2])
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert response.mimetype == "application/json"
    assert set(response.json["error"]) == {"code", "message"}


def test_405_says_which_methods_are_allowed(soliste, client):
    response = client.delete("/api/v1/payments", headers=soliste[2])
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "99999999999999"])
def test_bad_limit_is_invalid_input(soliste, client, limit):
    _error(client.get(f"/api/v1/me/entries?limit={limit}", headers=soliste[2]), 422,
           "invalid_input")


def test_entries_page_with_a_cursor(soliste, client, ledger):
    marie, shop, auth = soliste
    for amount in ("1.00", "2.00", "3.00"):
        ledger.pay(marie, shop, amount)
    page = client.get("/api/v1/me/entries?limit=2", headers=auth).json
    assert [e["amount"] for e in page["entries"]] == ["-3.00", "-2.00"]
    assert page["entries"][0]["counterparty"] == shop.party_code
    older = client.get(f"/api/v1/me/entries?limit=2&before={page['next']}", headers=auth).json
    assert [e["amount"] for e in older["entries"]] == ["-1.00", "42.00"]
    assert older["next"] is None


def test_missing_or_bad_token_is_401_with_www_authenticate(client, ledger):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"},
                    {"Authorization": "Bearer " + "A" * 43}):
        response = client.get("/api/v1/me", headers=headers)
        _error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_role_that_may_not_is_403(soliste, client):
    _error(client.get("/api/v1/ledger/summary", headers=soliste[2]), 403, "forbidden")
    _error(client.post("/api/v1/exchanges", headers=soliste[2],
                       json={"party": "S-000001", "euros": "20.00"}), 403, "forbidden")


def test_csrf_does_not_apply_to_the_api(soliste, client, ledger):
    _marie, shop, auth = soliste
    # The testing config keeps CSRF on: the web forms need a token, the API does not.
    response = client.post("/api/v1/payments", headers=auth,
                           json={"payee": shop.party_code, "amount": "1.00"})
    assert response.status_code == 201


def test_voucher_code_mistyped_is_invalid_code(soliste, client, ledger):
    shop = ledger.prestataire()
    auth = _token(client, shop.username)
    _error(client.get("/api/v1/vouchers/7K3M-Q9XD-2HPT-W4RB-Z", headers=auth), 422,
           "invalid_code")
    _error(client.post("/api/v1/vouchers/7K3M/redemptions", headers=auth,
                       json={"amount": "1.00"}), 422, "invalid_code")


def test_voucher_date_and_filieres_are_checked(client, ledger):
    ccas = ledger.user("ccas")
    auth = _token(client, ccas.username)
    base = {"amount": "30.00", "beneficiary_ref": "B-1", "valid_until": "2099-12-31"}
    for valid_until in ("31/12/2026", "2026-02-30", "tomorrow", 20261231):
        _error(client.post("/api/v1/vouchers", headers=auth,
                           json={**base, "valid_until": valid_until}), 422, "invalid_date")
    _error(client.post("/api/v1/vouchers", headers=auth, json={**base, "filieres": ["pain"]}),
           422, "invalid_input")
    _error(client.post("/api/v1/vouchers", headers=auth, json=base), 422, "invalid_date")


# ---------------------------------------------------------------- issue 13: hardening


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "application/jsonx", None,
])
def test_a_body_that_is_not_application_json_is_415(soliste, client, ledger, content_type):
    marie, shop, auth = soliste
    data = f'{{"payee": "{shop.party_code}", "amount": "1.00"}}'
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    _error(client.post("/api/v1/payments", headers=headers, data=data), 415,
           "unsupported_media_type")
    assert ledger.balance(marie) == 4200
    # The token call too: a browser's form post never gets a token.
    _error(client.post("/api/v1/tokens", data={"username": marie.username,
                                               "password": PASSWORD}),
           415, "unsupported_media_type")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON; charset=UTF-8"])
def test_json_with_or_without_its_charset_is_read(soliste, client, content_type):
    _marie, shop, auth = soliste
    response = client.post("/api/v1/payments", headers={**auth, "Content-Type": content_type},
                           data=f'{{"payee": "{shop.party_code}", "amount": "1.00"}}')
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("data", [
    '{{"payee": "{payee}", "amount": "1.00", "amount": "2.00"}}',
    '{{"payee": "{payee}", "amount": "1.00", "\\u0061mount": "2.00"}}',
    '{{"payee": "{payee}", "payee": "{payee}", "amount": "1.00"}}',
])
def test_duplicate_json_keys_are_400_and_charge_nothing(soliste, client, ledger, data):
    marie, shop, auth = soliste
    body = _error(client.post("/api/v1/payments", headers=auth,
                              data=data.format(payee=shop.party_code),
                              content_type="application/json"), 400, "duplicate_key")
    assert "« " in body["error"]["message"]
    assert ledger.balance(marie) == 4200


def test_duplicate_keys_in_a_nested_object_are_400(soliste, client):
    _error(client.post("/api/v1/payments", headers=soliste[2],
                       data='{"memo": {"a": 1, "a": 2}}', content_type="application/json"),
           400, "duplicate_key")


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"])
def test_bidirectional_controls_are_refused_in_free_text(soliste, client, ledger, char):
    marie, shop, auth = soliste
    _error(client.post("/api/v1/payments", headers=auth,
                       json={"payee": shop.party_code, "amount": "1.00",
                             "memo": f"Facture {char}1234"}), 422, "invalid_input")
    _error(client.post("/api/v1/tokens", json={"username": marie.username,
                                               "password": PASSWORD,
                                               "label": f"Caisse{char}"}),
           422, "invalid_input")
    assert ledger.balance(marie) == 4200
    # Right-to-left text itself is welcome; only the invisible controls are refused.
    done = client.post("/api/v1/payments", headers=auth,
                       json={"payee": shop.party_code, "amount": "1.00", "memo": "شكرا"})
    assert done.status_code == 201, done.text


def test_a_password_may_hold_bidirectional_controls(soliste, client):
    """Never shown anywhere: a wrong password, not a refused one."""
    marie = soliste[0]
    response = client.post("/api/v1/tokens", json={"username": marie.username,
                                                   "password": "abc\u202edef"})
    _error(response, 401, "invalid_credentials")


@pytest.mark.parametrize(("before", "status"), [("2147483647", 200), ("2147483648", 422),
                                                ("99999999999", 422), ("1", 200)])
def test_before_is_bounded_as_the_schema_says(soliste, client, before, status):
    response = client.get(f"/api/v1/me/entries?before={before}", headers=soliste[2])
    assert response.status_code == status, response.text
