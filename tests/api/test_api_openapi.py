"""The OpenAPI 3.1 description: generated from the registry and the request models, and
covering every route of the ``api`` blueprint with its methods."""

from __future__ import annotations

import re

import pytest

from bousol.app import create_app
from bousol.web.api import REGISTRY, schemas
from bousol.web.api.openapi import document, openapi_path


@pytest.fixture(scope="module")
def api_app():
    # No database is touched: the document is built from the code alone.
    return create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")


def test_every_rule_of_the_api_blueprint_is_in_the_document(api_app):
    paths = document()["paths"]
    rules = [r for r in api_app.url_map.iter_rules() if r.endpoint.startswith("api.")]
    assert len(rules) >= 15
    for rule in rules:
        path = openapi_path(rule.rule.removeprefix("/api/v1"))
        assert path in paths, f"{rule.rule} is not described"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {rule.rule} is not described"


def test_the_contract_calls_are_there():
    paths = document()["paths"]
    for method, path in [
        ("get", "/me"), ("get", "/me/entries"), ("post", "/exchanges"), ("post", "/payments"),
        ("post", "/payment-requests"), ("post", "/payment-requests/{id}/pay"),
        ("post", "/reconversions"), ("post", "/vouchers"), ("get", "/vouchers/{code}"),
        ("post", "/vouchers/{code}/redemptions"), ("get", "/ledger/summary"),
        ("post", "/tokens"), ("get", "/openapi.json"),
    ]:
        assert method in paths[path], (method, path)


def test_the_document_has_the_openapi_3_1_shape(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    doc = response.json
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": "/api/v1"}]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "POST /tokens gives one."}
    assert doc["security"] == [{"bearer": []}]
    schemas_ = doc["components"]["schemas"]
    assert {"Error", "ErrorBody", "PaymentIn", "PaymentOut", "VoucherIn"} <= set(schemas_)
    refs = set(re.findall(r'"\$ref": "([^"]+)"', __import__("json").dumps(doc)))
    for ref in refs:  # every $ref resolves
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas_, ref
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        for method, operation in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}
            assert operation["operationId"]
            assert operation["responses"]
            for status, answer in operation["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5][0-9]{2}", status)
                if status.startswith("4"):  # every error references the Error schema
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
            for parameter in operation.get("parameters", []):
                assert parameter["in"] in {"path", "query", "header"}
                if parameter["in"] == "path":
                    assert parameter["required"] is True
                    assert "{" + parameter["name"] + "}" in path


def test_request_bodies_are_the_validating_models():
    """Generated from the same models the routes validate with, not written beside."""
    doc = document()
    by_rule = {(openapi_path(o.rule), o.method.lower()): o for o in REGISTRY}
    for (path, method), operation in by_rule.items():
        described = doc["paths"][path][method]
        if operation.body is None:
            assert "requestBody" not in described
            continue
        ref = described["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        model_schema = operation.body.model_json_schema(
            ref_template="#/components/schemas/{model}")
        assert doc["components"]["schemas"][name]["properties"] == model_schema["properties"]
        assert doc["components"]["schemas"][name].get("additionalProperties") is False


def test_public_calls_need_no_token_and_money_calls_take_a_key():
    paths = document()["paths"]
    assert paths["/tokens"]["post"]["security"] == []
    assert paths["/openapi.json"]["get"]["security"] == []
    for path in ("/exchanges", "/payments", "/payment-requests/{id}/pay",
                 "/reconversions", "/vouchers", "/vouchers/{code}/redemptions"):
        names = [p["name"] for p in paths[path]["post"]["parameters"]]
        assert "Idempotency-Key" in names, path
    assert "409" in paths["/payments"]["post"]["responses"]  # idempotency_conflict
    assert "429" in paths["/tokens"]["post"]["responses"]


def test_amounts_accept_strings_and_numbers_in_the_schema():
    amount = schemas.PaymentIn.model_json_schema()["properties"]["amount"]
    assert {"string", "integer"} == {variant["type"] for variant in amount["anyOf"]}
    number = next(v for v in amount["anyOf"] if v["type"] == "integer")
    assert (number["minimum"], number["maximum"]) == (1, 1000000)


@pytest.mark.parametrize(("text", "accepted"), [
    ("0", False), ("0.00", False), ("0,0", False), ("00.00", False), ("9999999", False),
    ("1000000.01", False), ("1000001", False), ("-1", False), ("1.005", False),
    ("0.01", True), ("0,5", True), ("0.50", True), ("12", True), ("12,50", True),
    ("999999.99", True), ("1000000", True), ("1000000.00", True),
])
def test_the_amount_pattern_matches_only_what_the_api_accepts(text, accepted):
    """The schema promised "0" and "9999999" (ST202: valid request rejected)."""
    import re

    from bousol.ledger.kernel import money
    from bousol.ledger.kernel.errors import InvalidAmount

    assert bool(re.fullmatch(schemas.AMOUNT_PATTERN, text)) is accepted
    if accepted:
        assert money.parse_amount(text) > 0
    elif re.fullmatch(r"[0-9]+([.,][0-9]{1,2})?", text):
        with pytest.raises(InvalidAmount):
            money.parse_amount(text)


def test_the_voucher_code_example_is_a_valid_code_and_before_has_real_bounds():
    from bousol.ledger.ccas import voucher_codes

    paths = document()["paths"]
    code = next(p for p in paths["/vouchers/{code}"]["get"]["parameters"]
                if p["name"] == "code")
    for example in code["schema"]["examples"]:
        voucher_codes.parse(example)  # raises InvalidCode for a wrong check character
    before = next(p for p in paths["/me/entries"]["get"]["parameters"]
                  if p["name"] == "before")
    assert before["schema"]["maximum"] == 2**31 - 1


def test_every_call_with_a_token_names_its_scope():
    from bousol.ledger.access import api_tokens
    from bousol.web.api import ANY, REGISTRY

    for operation in REGISTRY:
        if operation.roles is None:
            assert operation.scope is None
            continue
        assert operation.scope == ANY or operation.scope in api_tokens.SCOPES, operation
        item = document()["paths"][openapi_path(operation.rule)][operation.method.lower()]
        assert item["security"] == [{"bearer": [] if operation.scope == ANY
                                     else [operation.scope]}]
        if operation.scope != ANY:
            assert "insufficient_scope" in item["responses"]["403"]["description"]
    scopes = {op.endpoint: op.scope for op in REGISTRY}
    assert scopes["create_payment"] == "pay" and scopes["create_exchange"] == "desk"
    assert scopes["create_voucher"] == "vouchers" and scopes["redeem_voucher"] == "till"
    assert scopes["me"] == "read" and scopes["revoke_current_token"] == ANY


def test_a_call_that_moves_money_must_declare_its_scope():
    from bousol.web.api import route

    with pytest.raises(TypeError, match="scope"):
        route("/nowhere", "POST", summary="x", roles=("bank",))


def test_schemathesis_loads_the_document():
    schemathesis = pytest.importorskip("schemathesis")
    loaded = schemathesis.openapi.from_dict(document())
    operations = [op for op in loaded.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document()["paths"].values())
