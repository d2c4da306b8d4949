"""Schemathesis fuzzing of the JSON API v1 from its own OpenAPI description.

The schema is loaded from ``GET /api/v1/openapi.json`` through WSGI (no network), and
every operation is called with generated requests, valid ones and invalid ones, as a
soliste, a prestataire, a bank clerk and the CCAS, each with its own bearer token. The
checks: no 5xx (the contract: no call answers 500 to any input), status codes the
schema documents, response bodies that conform to the schema.

Bounded: a fixed number of examples per operation and generation mode, no shrinking,
a derandomised (fixed-seed) generation, no example database; SQLite only (a copy of
the migrated template, like the browser tests' ``live`` fixture): the fuzz run is about
the HTTP layer, the ledger rules run on both databases elsewhere.
"""

from __future__ import annotations

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

from bousol import create_app
from bousol.extensions import db

API = "/api/v1"
PASSWORD = "secret-123"
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


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
