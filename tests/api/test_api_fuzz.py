"""Schemathesis fuzzing of the JSON API v1 from its own OpenAPI description.

The schema is loaded from ``GET /api/v1/openapi.json`` through WSGI (no network), and
every operation is called with generated requests, valid ones and invalid ones, as a
soliste, a prestataire, a bank clerk and the CCAS, each with its own bearer token. The
checks: no 5xx (the contract: no call answers 500 to any input), status codes the
schema documents, response bodies that conform to the schema, and (issue 13) a request
valid by the schema is never refused as invalid input (schemathesis' ST202, "valid
request rejected"; :func:`valid_requests_are_accepted`).

Bounded: a fixed number of examples per operation and generation mode, no shrinking,
a derandomised (fixed-seed) generation, no example database; SQLite only (a copy of
the migrated template, like the browser tests' ``live`` fixture): the fuzz run is about
the HTTP layer, the ledger rules run on both databases elsewhere.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bousol.app import create_app
from bousol.extensions import db
from bousol.ledger.ccas import voucher_codes
from bousol.ledger.kernel import clock
from bousol.ledger.kernel.errors import InvalidCode
from tests.helpers import PASSWORD

API = "/api/v1"
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}
# Refusals of a well-formed request by the books or the clock: the schema cannot know
# a balance. Anything else a positive (schema-valid) request gets in 400, 410, 413, 415
# or 422 is the schema promising what the API refuses.
BUSINESS_REFUSALS = frozenset({"insufficient_funds", "amount_exceeds_remaining",
                               "voucher_expired", "request_expired"})


def _code_is_mistyped(code: object) -> bool:
    try:
        voucher_codes.parse(code)
    except InvalidCode:
        return True
    return False


def _date_out_of_range(body: object) -> bool:
    try:
        day = dt.date.fromisoformat(body["valid_until"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return False
    today = clock.paris_today()
    return not today <= day <= today + dt.timedelta(days=366)


@schemathesis.check
def valid_requests_are_accepted(ctx, response, case) -> bool | None:
    """ST202 made exact: a request the schema calls valid is not refused as invalid.

    Two refusals of schema-valid input are told apart precisely rather than allowed
    wholesale: ``invalid_code`` only when the code's check character is really wrong
    (a pattern cannot compute it), ``invalid_date`` only when ``valid_until`` really
    is past or more than 366 days ahead (a schema has no "today")."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code < 400 or response.status_code in (401, 403, 404, 409, 429):
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if code in BUSINESS_REFUSALS:
        return None
    if code == "invalid_code" and _code_is_mistyped((case.path_parameters or {}).get("code")):
        return None
    if code == "invalid_date" and _date_out_of_range(case.body):
        return None
    raise AssertionError(
        f"ST202 valid request rejected: {case.operation.label} answered "
        f"{response.status_code} {code} to path={case.path_parameters} "
        f"query={case.query} body={case.body!r}: {response.text[:300]}")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, valid_requests_are_accepted]


@dataclass
class Fuzzed:
    app: object
    schema: schemathesis.BaseSchema
    tokens: dict[str, str]

    def token(self, username: str) -> str:
        response = self.app.test_client().post(
            f"{API}/tokens", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()["token"]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, sqlite_template) -> Iterator[Fuzzed]:
    """An app on its own SQLite copy, with one user per role and some money about."""
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite3"
    shutil.copyfile(sqlite_template, path)
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
    runner = app.test_cli_runner()

    def cli(*args: str) -> str:
        result = runner.invoke(args=["bousol", *args])
        assert result.exit_code == 0, result.output
        return result.output.strip()

    cli("subsidy", "1000")
    cli("phase", "ccas", "--on")
    cli("phase", "b2b", "--on")
    codes = {
        "soliste": cli("create-user", "fz-soliste", "--role", "soliste",
                       "--password", PASSWORD),
        "prestataire": cli("create-user", "fz-prestataire", "--role", "prestataire",
                           "--password", PASSWORD, "--filiere", "alimentation"),
        "ccas": cli("create-user", "fz-ccas", "--role", "ccas", "--password", PASSWORD),
    }
    cli("create-user", "fz-bank", "--role", "bank", "--password", PASSWORD)
    fuzz = Fuzzed(app, schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app), {})
    fuzz.tokens = {role: fuzz.token(f"fz-{role}")
                   for role in ("soliste", "prestataire", "bank", "ccas")}
    # Money about, so that generated payments, vouchers and reconversions can succeed.
    client = app.test_client()
    bank = {"Authorization": f"Bearer {fuzz.tokens['bank']}"}
    for party, euros in ((codes["soliste"], "500.00"), (codes["ccas"], "500.00")):
        response = client.post(f"{API}/exchanges", json={"party": party, "euros": euros},
                               headers=bank)
        assert response.status_code == 201, response.get_data(as_text=True)
    response = client.post(
        f"{API}/payments", json={"payee": codes["prestataire"], "amount": "200.00"},
        headers={"Authorization": f"Bearer {fuzz.tokens['soliste']}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    yield fuzz
    with app.app_context():
        db.engine.dispose()


def _operations(schema) -> list:
    operations, errors = [], []
    for result in schema.get_all_operations():
        try:
            operations.append(result.ok())
        except AttributeError:  # an Err: the schema itself is broken there
            errors.append(result.err())
    assert not errors, errors
    assert operations, "the OpenAPI description lists no operation"
    return operations


def test_openapi_description_is_valid(fuzzed):
    fuzzed.schema.validate()
    labels = {op.label for op in _operations(fuzzed.schema)}
    for label in ("GET /me", "GET /me/entries", "POST /exchanges", "POST /payments",
                  "POST /payment-requests", "POST /payment-requests/{id}/pay",
                  "POST /reconversions", "POST /vouchers", "GET /vouchers/{code}",
                  "POST /vouchers/{code}/redemptions", "GET /ledger/summary",
                  "POST /tokens"):
        method, path = label.split(" ")
        assert any(lab.startswith(method) and lab.endswith(path) for lab in labels), (
            label, sorted(labels))


def _revokes_tokens(operation) -> bool:
    return operation.method.upper() == "DELETE" and operation.path.startswith("/tokens")


def _fuzz(fuzz: Fuzzed, operation, mode: GenerationMode, role: str,
          statuses: Counter) -> None:
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {fuzz.tokens[role]}"})
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


@pytest.mark.parametrize("role", ["soliste", "prestataire", "bank", "ccas"])
def test_fuzz_every_operation(fuzzed, role):
    # The calls that revoke tokens go last: they may revoke the role's own token (and
    # logging in again for each example would trip the login throttle), after which
    # the role's calls answer 401, as documented.
    operations = sorted(_operations(fuzzed.schema), key=_revokes_tokens)
    statuses: Counter = Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(fuzzed, operation, mode, role, statuses)
    # The token worked: the run reached the calls, not only the authentication.
    assert sum(n for status, n in statuses.items() if 200 <= status < 300) >= 10, statuses
    assert statuses[401] < sum(statuses.values()) / 2, statuses


def test_fuzz_without_a_token(fuzzed):
    """Without a token, any input: 401 (or 4xx for the token call), never a 5xx."""
    for operation in _operations(fuzzed.schema):
        @settings(max_examples=5, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        @given(case=operation.as_strategy())
        def run(case) -> None:
            case.headers = {k: v for k, v in (case.headers or {}).items()
                            if k.lower() != "authorization"}
            response = case.call()
            case.validate_response(response, checks=CHECKS)

        run()


def _fake(mode: GenerationMode, status: int, code: str, *, path=None, body=None):
    from types import SimpleNamespace

    response = SimpleNamespace(status_code=status, text=code,
                               json=lambda: {"error": {"code": code, "message": "…"}})
    case = SimpleNamespace(meta=SimpleNamespace(generation=SimpleNamespace(mode=mode)),
                           path_parameters=path or {}, query={}, body=body,
                           operation=SimpleNamespace(label="POST /x"))
    return response, case


@pytest.mark.parametrize(("status", "code", "path", "body", "refused"), [
    (422, "invalid_input", None, None, True),
    (422, "invalid_amount", None, {"amount": "0"}, True),
    (415, "unsupported_media_type", None, None, True),
    (400, "duplicate_key", None, None, True),
    (422, "invalid_code", {"code": "7K3M-Q9XD-2HPT-W4RB-4"}, None, True),  # a good code
    (422, "invalid_code", {"code": "7K3M-Q9XD-2HPT-W4RB-C"}, None, False),
    (422, "invalid_date", None, {"valid_until": "2000-01-01"}, False),
    (422, "invalid_date", None, {"valid_until": clock.paris_today().isoformat()}, True),
    (422, "insufficient_funds", None, None, False),
    (410, "voucher_expired", None, None, False),
    (404, "unknown_party", None, None, False),
    (201, "", None, None, False),
])
def test_the_valid_request_check_tells_input_refusals_from_business_ones(
        status, code, path, body, refused):
    response, case = _fake(GenerationMode.POSITIVE, status, code, path=path, body=body)
    if refused:
        with pytest.raises(AssertionError, match="ST202"):
            valid_requests_are_accepted(None, response, case)
    else:
        assert valid_requests_are_accepted(None, response, case) is None
    # Negative (invalid by the schema) requests are the other checks' business.
    response, case = _fake(GenerationMode.NEGATIVE, status, code, path=path, body=body)
    assert valid_requests_are_accepted(None, response, case) is None
