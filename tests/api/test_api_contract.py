"""Black-box tests of the JSON API v1 contract (../shared/api-v1.md).

The world is set up only through what the contract names: the ``flask bousol`` set-up
commands (``create-user``, ``phase``, and ``subsidy`` for the bonus fund, README) and the
API calls themselves, with a bearer token from ``POST /api/v1/tokens``. Two sub-tests
need a state no contract call can make; each says so where it touches the database
(an expired voucher, a reserve short of euros).

Every test runs on SQLite and on PostgreSQL (through the ``app`` fixture).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bousol.ledger.kernel import clock
from tests.helpers import PASSWORD, hammer

API = "/api/v1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PARIS = ZoneInfo("Europe/Paris")
_names = itertools.count(1)


def today() -> dt.date:
    return clock.paris_today()


# ---------------------------------------------------------------- the world


@dataclass
class User:
    username: str
    role: str
    code: str | None  # the party's public code, None for admin and bank
    token: str
    name: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class World:
    """The app seen from outside: CLI set-up commands and API calls."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    # set-up commands ----------------------------------------------------
    def cli(self, *args: str) -> str:
        result = self.app.test_cli_runner().invoke(args=["bousol", *args])
        assert result.exit_code == 0, result.output
        return result.output.strip()

    def subsidy(self, euros: str = "1000") -> None:
        self.cli("subsidy", euros)

    def phase(self, name: str, on: bool = True) -> None:
        self.cli("phase", name, "--on" if on else "--off")

    def user(self, role: str, *, filiere: str | None = None, name: str | None = None) -> User:
        username = f"{role}{next(_names)}"
        name = name or f"Nom {username}"
        args = ["create-user", username, "--role", role, "--password", PASSWORD,
                "--name", name]
        if filiere:
            args += ["--filiere", filiere]
        printed = self.cli(*args)
        code = printed if role in ("soliste", "prestataire", "ccas") else None
        if code is not None:
            assert code[:2] == {"soliste": "S-", "prestataire": "P-", "ccas": "C-"}[role]
        response = self.client.post(f"{API}/tokens",
                                    json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.get_data(as_text=True)
        return User(username, role, code, response.get_json()["token"], name)

    def soliste(self, **kw) -> User:
        return self.user("soliste", **kw)

    def prestataire(self, filiere: str = "alimentation", **kw) -> User:
        return self.user("prestataire", filiere=filiere, **kw)

    # calls ----------------------------------------------------------------
    def call(self, method: str, path: str, user: User | None = None, *, json_body=None,
             headers: dict | None = None, client=None, **kw):
        all_headers = dict(user.auth) if user else {}
        all_headers.update(headers or {})
        url = path if path.startswith(("/", "http")) else f"{API}/{path}"
        if json_body is not None:
            kw["json"] = json_body
        return (client or self.client).open(url, method=method, headers=all_headers, **kw)

    def get(self, path, user=None, **kw):
        return self.call("GET", path, user, **kw)

    def post(self, path, user=None, body=None, **kw):
        return self.call("POST", path, user, json_body={} if body is None else body, **kw)

    # shortcuts for the set-up through the API ----------------------------
    def ok(self, response, status: int = 201) -> dict:
        assert response.status_code == status, (response.status_code,
                                                response.get_data(as_text=True))
        assert response.is_json, response.get_data(as_text=True)
        return response.get_json()

    def bank(self) -> User:
        if not hasattr(self, "_bank"):
            self._bank = self.user("bank")
        return self._bank

    def exchange(self, party: User | str, euros: str) -> dict:
        code = party if isinstance(party, str) else party.code
        return self.ok(self.post("exchanges", self.bank(), {"party": code, "euros": euros}))

    def pay(self, payer: User, payee: User | str, amount: str, **kw) -> dict:
        code = payee if isinstance(payee, str) else payee.code
        return self.ok(self.post("payments", payer, {"payee": code, "amount": amount}, **kw))

    def me(self, user: User) -> dict:
        return self.ok(self.get("me", user), 200)

    def bsol(self, user: User) -> str:
        return self.me(user)["balances"]["BSOL"]

    def eur(self, user: User) -> str:
        return self.me(user)["balances"]["EUR"]

    def funded_ccas(self, euros: str = "100.00") -> User:
        """A CCAS with Bou'Sols (its own, bought at the bank), granting open."""
        self.phase("ccas", True)
        ccas = self.user("ccas")
        self.exchange(ccas, euros)
        return ccas

    def voucher(self, ccas: User, amount: str = "30.00", **extra) -> dict:
        body = {"amount": amount, "beneficiary_ref": f"BEN-{next(_names)}",
                "valid_until": (today() + dt.timedelta(days=30)).isoformat(), **extra}
        return self.ok(self.post("vouchers", ccas, body))


@pytest.fixture
def world(app) -> World:
    world = World(app)
    world.subsidy("1000")
    return world


def assert_error(response, status: int | None, code: str | None) -> dict:
    """The contract's error shape: ``{"error": {"code", "message"}}`` with a 4xx status."""
    text = response.get_data(as_text=True)
    if status is None:
        assert 400 <= response.status_code < 500, (response.status_code, text)
    else:
        assert response.status_code == status, (response.status_code, text)
    assert response.is_json, text
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert error["code"] == error["code"].lower() and " " not in error["code"], body
    assert isinstance(error.get("message"), str) and error["message"].strip(), body
    if code is not None:
        assert error["code"] == code, body
    return error


def assert_png(world: World, url: str, user: User) -> None:
    response = world.get(url, user)
    assert response.status_code == 200, response.status_code
    assert response.data[:8] == PNG_SIGNATURE
    assert response.mimetype == "image/png"


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def mistyped(code: str) -> str:
    """The code with its first character changed (a single wrong character)."""
    first = code[0].upper()
    other = CROCKFORD[(CROCKFORD.index(first) + 7) % 32]
    return other + code[1:]


def unknown_code(world: World, real: str, user: User) -> str:
    """A well-formed code of no voucher: a real code with a changed character and each
    possible check character in turn; exactly one of the 32 is well formed."""
    base = mistyped(real)
    found = []
    for check in CROCKFORD:
        candidate = base[:-1] + check
        response = world.get(f"vouchers/{candidate}", user)
        if response.status_code == 404:
            assert_error(response, 404, "not_found")
            found.append(candidate)
        else:
            assert_error(response, 422, "invalid_code")
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- tokens and auth


def test_token_is_created_for_a_username_and_password(world):
    world.cli("create-user", "marie", "--role", "soliste", "--password", PASSWORD)
    response = world.client.post(f"{API}/tokens",
                                 json={"username": "marie", "password": PASSWORD})
    body = world.ok(response)
    assert isinstance(body["token"], str) and len(body["token"]) >= 16
    expires = parse_iso(body["expires_at"])
    assert expires.tzinfo is not None
    assert expires > clock.now()
    me = world.ok(world.get("me", headers={"Authorization": f"Bearer {body['token']}"}), 200)
    assert me["username"] == "marie"


def test_token_refused_for_a_wrong_password(world):
    world.cli("create-user", "marie", "--role", "soliste", "--password", PASSWORD)
    for credentials in ({"username": "marie", "password": "wrong-password"},
                        {"username": "nobody", "password": PASSWORD}):
        assert_error(world.client.post(f"{API}/tokens", json=credentials), None, None)


@pytest.mark.parametrize("header", [
    None,
    "Bearer",
    "Bearer ",
    "Bearer not-a-real-token",
    "Basic bWFyaWU6c2VjcmV0LTEyMw==",
    "not-a-real-token",
])
def test_missing_or_bad_token_is_401(world, header):
    world.soliste()
    headers = {"Authorization": header} if header is not None else {}
    for method, path, body in (("GET", "me", None), ("GET", "me/entries", None),
                               ("POST", "payments", {"payee": "P-000001", "amount": "1.00"}),
                               ("POST", "exchanges", {"party": "S-000001", "euros": "1.00"}),
                               ("GET", "ledger/summary", None)):
        response = world.call(method, path, headers=headers, json_body=body)
        assert_error(response, 401, None)


def test_a_forged_token_is_401(world):
    marie = world.soliste()
    forged = marie.token[:-1] + ("A" if marie.token[-1] != "A" else "B")
    assert_error(world.get("me", headers={"Authorization": f"Bearer {forged}"}), 401, None)


def test_token_authenticated_posts_need_no_csrf_token(world):
    # The testing config keeps CSRF on (WTF_CSRF_ENABLED): a bearer POST still passes.
    marie = world.soliste()
    body = world.exchange(marie, "20.00")
    assert body["bousols"] == "21.00"
    assert world.bsol(marie) == "21.00"


# ---------------------------------------------------------------- GET /me


@pytest.mark.parametrize("role", ["soliste", "prestataire", "ccas"])
def test_me_for_a_role_with_a_party(world, role):
    user = world.user(role, filiere="alimentation" if role == "prestataire" else None,
                      name="Jeanne d'Arc")
    body = world.me(user)
    assert body["username"] == user.username
    assert body["role"] == role
    assert body["party"] == {"code": user.code, "kind": role, "name": "Jeanne d'Arc"}
    assert body["balances"] == {"BSOL": "0.00", "EUR": "0.00"}


@pytest.mark.parametrize("role", ["admin", "bank"])
def test_me_for_a_role_without_a_party(world, role):
    user = world.user(role)
    body = world.me(user)
    assert body["username"] == user.username
    assert body["role"] == role
    assert body["party"] is None
    assert "balances" in body


def test_me_balances_follow_the_money(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    assert world.me(marie)["balances"] == {"BSOL": "21.00", "EUR": "0.00"}
    world.pay(marie, baker, "12.50")
    assert world.me(marie)["balances"] == {"BSOL": "8.50", "EUR": "0.00"}
    assert world.me(baker)["balances"] == {"BSOL": "12.50", "EUR": "0.00"}


# ---------------------------------------------------------------- GET /me/entries


def test_entries_newest_first_signed_from_the_callers_side(world):
    marie, baker = world.soliste(), world.prestataire()
    exchanged = world.exchange(marie, "20.00")
    first = world.ok(world.post("payments", marie,
                                {"payee": baker.code, "amount": "5.00", "memo": "Pain"}))
    second = world.ok(world.post("payments", marie,
                                 {"payee": baker.code, "amount": "1.50", "memo": "Croissant"}))

    body = world.ok(world.get("me/entries", marie), 200)
    assert set(body) >= {"entries", "next"}
    entries = body["entries"]
    assert [e["id"] for e in entries] == [second["entry_id"], first["entry_id"],
                                          exchanged["entry_id"]]
    assert [e["amount"] for e in entries] == ["-1.50", "-5.00", "21.00"]
    for entry in entries:
        assert set(entry) >= {"id", "kind", "amount", "counterparty", "created_at", "memo"}
        assert isinstance(entry["kind"], str) and entry["kind"]
        parse_iso(entry["created_at"])
    assert [e["memo"] for e in entries[:2]] == ["Croissant", "Pain"]
    assert baker.code in json.dumps(entries[0]["counterparty"])
    times = [parse_iso(e["created_at"]) for e in entries]
    assert times == sorted(times, reverse=True)
    assert body["next"] is None

    # The payee sees the same payments with a positive sign, the payer as counterparty.
    takings = world.ok(world.get("me/entries", baker), 200)["entries"]
    assert [(e["id"], e["amount"]) for e in takings] == [
        (second["entry_id"], "1.50"), (first["entry_id"], "5.00")]
    assert marie.code in json.dumps(takings[0]["counterparty"])


def _cursor_parameter(world: World) -> str:
    """The contract names the ``next`` cursor but not the query parameter that takes it
    back: read it from the app's OpenAPI description (the other query parameter of
    ``GET /me/entries`` than ``limit``)."""
    spec = world.ok(world.get(f"{API}/openapi.json"), 200)
    paths = spec["paths"]
    operation = (paths.get("/me/entries") or paths.get(f"{API}/me/entries"))["get"]
    names = [p["name"] for p in operation.get("parameters", [])
             if p.get("in") == "query" and p["name"] != "limit"]
    assert len(names) == 1, names
    return names[0]


def _follow(world: World, user: User, cursor, limit: int):
    """The next page: ``next`` as a link, or as a cursor passed back as a parameter."""
    if isinstance(cursor, str) and cursor.startswith(("/", "http")):
        return world.get(cursor, user)
    return world.get(f"me/entries?limit={limit}&{_cursor_parameter(world)}={cursor}", user)


def test_entries_limit_and_next_cursor(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    paid = [world.pay(marie, baker, f"{i}.00")["entry_id"] for i in range(1, 5)]
    every = [e["id"] for e in world.ok(world.get("me/entries", marie), 200)["entries"]]
    assert len(every) == 5 and every[:4] == paid[::-1]

    page = world.ok(world.get("me/entries?limit=2", marie), 200)
    seen = [e["id"] for e in page["entries"]]
    assert len(seen) == 2 and page["next"] is not None
    while page["next"] is not None:
        page = world.ok(_follow(world, marie, page["next"], 2), 200)
        assert 1 <= len(page["entries"]) <= 2
        seen += [e["id"] for e in page["entries"]]
        assert len(seen) <= 5, seen
    assert seen == every

    one = world.ok(world.get("me/entries?limit=5", marie), 200)
    assert [e["id"] for e in one["entries"]] == every


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "100000000000000000000", "2.5", ""])
def test_entries_odd_limits_never_500(world, limit):
    marie = world.soliste()
    response = world.get(f"me/entries?limit={limit}", marie)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_error(response, None, None)


def test_entries_need_a_party(world):
    assert_error(world.get("me/entries", world.user("admin")), 403, None)


# ---------------------------------------------------------------- POST /exchanges


def test_exchange_success(world):
    marie = world.soliste()
    body = world.exchange(marie, "20.00")
    assert isinstance(body["entry_id"], int)
    assert body["euros"] == "20.00" and body["bousols"] == "21.00"
    assert body["balance"] == "21.00"
    again = world.exchange(marie, "10.00")
    assert (again["bousols"], again["balance"]) == ("10.50", "31.50")
    assert again["entry_id"] != body["entry_id"]
    assert world.bsol(marie) == "31.50"


def test_exchange_for_the_ccas_funding_its_aid(world):
    ccas = world.user("ccas")
    body = world.exchange(ccas, "100.00")
    assert body["euros"] == "100.00" and body["bousols"] == "105.00"
    assert body["balance"] == "105.00" == world.bsol(ccas)


def test_exchange_unknown_party(world):
    bank = world.bank()
    for code in ("S-999999", "C-999999"):
        response = world.post("exchanges", bank, {"party": code, "euros": "20.00"})
        assert_error(response, 404, "unknown_party")


def test_exchange_invalid_amount(world):
    marie = world.soliste()
    for euros in ("0", "-20.00", "20.001", "abc", True, "1000000.01"):
        response = world.post("exchanges", world.bank(), {"party": marie.code, "euros": euros})
        assert_error(response, 422, "invalid_amount")
    assert world.bsol(marie) == "0.00"


def test_exchange_is_for_the_bank_only(world):
    marie = world.soliste()
    world.exchange(marie, "20.00")
    for role in ("soliste", "prestataire", "ccas"):
        user = world.user(role, filiere="alimentation" if role == "prestataire" else None)
        response = world.post("exchanges", user, {"party": marie.code, "euros": "20.00"})
        assert_error(response, 403, None)
    assert_error(world.post("exchanges", marie, {"party": marie.code, "euros": "1.00"}),
                 403, None)
    assert world.bsol(marie) == "21.00"


def test_exchange_for_a_prestataire_is_refused(world):
    baker = world.prestataire()
    assert_error(world.post("exchanges", world.bank(), {"party": baker.code, "euros": "20.00"}),
                 None, None)
    assert world.bsol(baker) == "0.00"


# ---------------------------------------------------------------- POST /payments


def test_payment_success(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    body = world.ok(world.post("payments", marie,
                               {"payee": baker.code, "amount": "12.50", "memo": "Pain"}))
    assert isinstance(body["entry_id"], int)
    assert body["amount"] == "12.50" and body["payee"] == baker.code
    assert body["balance"] == "8.50"
    no_memo = world.pay(marie, baker, "0.50")
    assert no_memo["balance"] == "8.00"
    assert (world.bsol(marie), world.bsol(baker)) == ("8.00", "13.00")


def test_payment_insufficient_funds(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    response = world.post("payments", marie, {"payee": baker.code, "amount": "21.01"})
    assert_error(response, 422, "insufficient_funds")
    assert (world.bsol(marie), world.bsol(baker)) == ("21.00", "0.00")
    assert world.pay(marie, baker, "21.00")["balance"] == "0.00"


def test_payment_flow_not_allowed(world):
    marie, lucie = world.soliste(), world.soliste()
    baker, farmer = world.prestataire(), world.prestataire()
    world.exchange(marie, "20.00")
    # Soliste to soliste: in no phase.
    assert_error(world.post("payments", marie, {"payee": lucie.code, "amount": "1.00"}),
                 403, "flow_not_allowed")
    # Soliste to the CCAS: in no phase either.
    ccas = world.user("ccas")
    assert_error(world.post("payments", marie, {"payee": ccas.code, "amount": "1.00"}),
                 403, "flow_not_allowed")
    # Prestataire to prestataire: only once the B2B phase is on.
    world.pay(marie, baker, "10.00")
    assert_error(world.post("payments", baker, {"payee": farmer.code, "amount": "4.00"}),
                 403, "flow_not_allowed")
    assert world.bsol(baker) == "10.00"
    world.phase("b2b", True)
    body = world.pay(baker, farmer, "4.00")
    assert (body["payee"], body["balance"]) == (farmer.code, "6.00")
    world.phase("b2b", False)
    assert_error(world.post("payments", baker, {"payee": farmer.code, "amount": "1.00"}),
                 403, "flow_not_allowed")
    assert (world.bsol(baker), world.bsol(farmer), world.bsol(lucie)) == ("6.00", "4.00",
                                                                          "0.00")


def test_payment_unknown_party(world):
    marie = world.soliste()
    world.exchange(marie, "20.00")
    for code in ("P-999999", "S-999999"):
        assert_error(world.post("payments", marie, {"payee": code, "amount": "1.00"}),
                     404, "unknown_party")
    assert world.bsol(marie) == "21.00"


def test_payment_invalid_amount(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    for amount in ("0", "-1.00", "1.001", 1.001, "x", False):
        assert_error(world.post("payments", marie, {"payee": baker.code, "amount": amount}),
                     422, "invalid_amount")
    assert world.bsol(marie) == "21.00"


@pytest.mark.parametrize("role", ["bank", "ccas", "admin"])
def test_payment_role_not_allowed(world, role):
    baker = world.prestataire()
    user = world.user(role)
    assert_error(world.post("payments", user, {"payee": baker.code, "amount": "1.00"}),
                 403, None)
    assert world.bsol(baker) == "0.00"


# ---------------------------------------------------------------- amount rules


@pytest.mark.parametrize(("amount", "shown"), [
    ("12.50", "12.50"), (12.5, "12.50"), ("12.5", "12.50"), ("12", "12.00"), (12, "12.00"),
    ("0.01", "0.01"), (0.01, "0.01"),
])
def test_amount_accepted_as_string_or_number(world, amount, shown):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    body = world.ok(world.post("payments", marie, {"payee": baker.code, "amount": amount}))
    assert body["amount"] == shown
    assert world.bsol(baker) == shown


@pytest.mark.parametrize("amount", [
    "12.345", 12.345, "0.001", "0", 0, "0.00", 0.0, "-5.00", -5, -0.01,
    "1000000.01", 1000000.01, 10**9, True, False, "", "abc", "NaN", "Infinity", "12.50 B",
])
def test_amount_refused(world, amount):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    response = world.post("payments", marie, {"payee": baker.code, "amount": amount})
    assert_error(response, 422, "invalid_amount")
    assert world.bsol(marie) == "21.00"


@pytest.mark.parametrize("amount", [None, [12.5], {"amount": "12.50"}])
def test_amount_of_another_json_type_is_a_4xx(world, amount):
    # Not a string nor a number: the contract names no code, only a 4xx error.
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    response = world.post("payments", marie, {"payee": baker.code, "amount": amount})
    assert_error(response, None, None)
    assert world.bsol(marie) == "21.00"


def test_amount_upper_bound_is_allowed(world):
    # 1000000.00 is a valid amount: refused for lack of funds, not as an amount.
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    for amount in ("1000000.00", 1000000):
        response = world.post("payments", marie, {"payee": baker.code, "amount": amount})
        assert_error(response, 422, "insufficient_funds")


@pytest.mark.parametrize(("path", "field"), [
    ("exchanges", "euros"), ("payment-requests", "amount"), ("reconversions", "bousols"),
    ("vouchers", "amount"),
])
def test_amount_rules_on_every_amount_field(world, path, field):
    marie, baker = world.soliste(), world.prestataire()
    ccas = world.funded_ccas()
    caller, body = {
        "exchanges": (world.bank(), {"party": marie.code}),
        "payment-requests": (baker, {}),
        "reconversions": (world.bank(), {"prestataire": baker.code}),
        "vouchers": (ccas, {"beneficiary_ref": "BEN-AMOUNT",
                            "valid_until": (today() + dt.timedelta(days=10)).isoformat()}),
    }[path]
    for amount in ("1.234", "0", "-1", "1000000.01", True, "abc"):
        assert_error(world.post(path, caller, {**body, field: amount}), 422, "invalid_amount")


# ---------------------------------------------------------------- payment requests


def test_payment_request_success_and_qr_png(world):
    baker = world.prestataire()
    body = world.ok(world.post("payment-requests", baker,
                               {"amount": "12.50", "memo": "Table 4"}))
    assert body["id"] is not None
    assert body["amount"] == "12.50" and body["status"] == "open"
    assert isinstance(body["pay_url"], str) and body["pay_url"]
    assert isinstance(body["qr_url"], str) and body["qr_url"]
    assert_png(world, body["qr_url"], baker)
    no_memo = world.ok(world.post("payment-requests", baker, {"amount": 3}))
    assert no_memo["amount"] == "3.00" and no_memo["id"] != body["id"]


def test_payment_request_invalid_amount(world):
    baker = world.prestataire()
    for amount in ("0", "-3.00", "3.001", "1000000.01", "trois", True):
        assert_error(world.post("payment-requests", baker, {"amount": amount}),
                     422, "invalid_amount")


@pytest.mark.parametrize("role", ["soliste", "bank", "ccas"])
def test_payment_request_is_for_prestataires(world, role):
    assert_error(world.post("payment-requests", world.user(role), {"amount": "1.00"}),
                 403, None)


def _request(world: World, payee: User, amount: str = "12.50") -> dict:
    return world.ok(world.post("payment-requests", payee, {"amount": amount}))


def test_pay_a_payment_request(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    request = _request(world, baker)
    body = world.ok(world.post(f"payment-requests/{request['id']}/pay", marie, {}))
    assert isinstance(body["entry_id"], int)
    assert body["amount"] == "12.50" and body["payee"] == baker.code
    assert body["balance"] == "8.50"
    assert (world.bsol(marie), world.bsol(baker)) == ("8.50", "12.50")
    # Paid: another payer is refused, and nothing moves.
    lucie = world.soliste()
    world.exchange(lucie, "20.00")
    assert_error(world.post(f"payment-requests/{request['id']}/pay", lucie, {}),
                 409, "already_paid")
    assert (world.bsol(marie), world.bsol(baker), world.bsol(lucie)) == ("8.50", "12.50",
                                                                         "21.00")


def test_pay_a_payment_request_twice_by_the_same_payer_without_a_key(world):
    # The contract's only replay is the Idempotency-Key: without one, paying a request
    # that is paid is `already_paid`, whoever asks (and nothing moves).
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    request = _request(world, baker)
    world.ok(world.post(f"payment-requests/{request['id']}/pay", marie, {}))
    assert_error(world.post(f"payment-requests/{request['id']}/pay", marie, {}),
                 409, "already_paid")
    assert (world.bsol(marie), world.bsol(baker)) == ("8.50", "12.50")


def test_pay_a_payment_request_insufficient_funds(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "10.00")  # 10.50 B
    request = _request(world, baker, "10.51")
    assert_error(world.post(f"payment-requests/{request['id']}/pay", marie, {}),
                 422, "insufficient_funds")
    assert (world.bsol(marie), world.bsol(baker)) == ("10.50", "0.00")
    world.exchange(marie, "1.00")
    assert world.ok(world.post(f"payment-requests/{request['id']}/pay", marie, {}))[
        "balance"] == "1.04"


def test_pay_a_payment_request_flow_not_allowed(world):
    marie, baker, farmer = world.soliste(), world.prestataire(), world.prestataire()
    world.exchange(marie, "20.00")
    world.pay(marie, baker, "10.00")
    request = _request(world, farmer, "4.00")
    assert_error(world.post(f"payment-requests/{request['id']}/pay", baker, {}),
                 403, "flow_not_allowed")
    assert world.bsol(baker) == "10.00"
    world.phase("b2b", True)
    body = world.ok(world.post(f"payment-requests/{request['id']}/pay", baker, {}))
    assert (body["payee"], body["balance"]) == (farmer.code, "6.00")


def test_pay_a_payment_request_not_found(world):
    marie = world.soliste()
    world.exchange(marie, "20.00")
    for request_id in ("999999", "0"):
        assert_error(world.post(f"payment-requests/{request_id}/pay", marie, {}),
                     404, "not_found")
    assert world.bsol(marie) == "21.00"


@pytest.mark.parametrize("role", ["bank", "ccas", "admin"])
def test_pay_a_payment_request_role_not_allowed(world, role):
    baker = world.prestataire()
    request = _request(world, baker)
    assert_error(world.post(f"payment-requests/{request['id']}/pay", world.user(role), {}),
                 403, None)


# ---------------------------------------------------------------- reconversions


def _earning(world: World, euros: str, pay: str) -> User:
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, euros)
    world.pay(marie, baker, pay)
    return baker


def test_reconversion_success(world):
    baker = _earning(world, "100.00", "100.00")
    body = world.ok(world.post("reconversions", world.bank(),
                               {"prestataire": baker.code, "bousols": "100.00"}))
    assert isinstance(body["entry_id"], int)
    assert (body["bousols"], body["fee"], body["euros"]) == ("100.00", "5.00", "95.00")
    assert world.me(baker)["balances"] == {"BSOL": "0.00", "EUR": "95.00"}


def test_reconversion_insufficient_funds(world):
    baker = _earning(world, "20.00", "10.00")
    assert_error(world.post("reconversions", world.bank(),
                            {"prestataire": baker.code, "bousols": "10.01"}),
                 422, "insufficient_funds")
    assert world.me(baker)["balances"] == {"BSOL": "10.00", "EUR": "0.00"}


def test_reconversion_unknown_party(world):
    assert_error(world.post("reconversions", world.bank(),
                            {"prestataire": "P-999999", "bousols": "10.00"}),
                 404, "unknown_party")


def test_reconversion_reserve_insufficient(world, ledger):
    baker = world.prestataire()
    lucie = world.soliste()
    # OUTSIDE THE CONTRACT (no API call can make it): 40 € taken in cash at the desk
    # stay in the drawer, not in the reserve, until banked. Only the ledger's own
    # exchange with tender=cash leaves the reserve short of the Bou'Sols in circulation.
    ledger.exchange(lucie.code, "40.00", tender="cash")
    world.pay(lucie, baker, "42.00")
    response = world.post("reconversions", world.bank(),
                          {"prestataire": baker.code, "bousols": "40.00"})
    assert_error(response, 409, "reserve_insufficient")
    assert world.me(baker)["balances"] == {"BSOL": "42.00", "EUR": "0.00"}


@pytest.mark.parametrize("role", ["soliste", "prestataire", "ccas"])
def test_reconversion_role_not_allowed(world, role):
    baker = _earning(world, "20.00", "10.00")
    user = baker if role == "prestataire" else world.user(role)
    assert_error(world.post("reconversions", user,
                            {"prestataire": baker.code, "bousols": "5.00"}), 403, None)
    assert world.bsol(baker) == "10.00"


# ---------------------------------------------------------------- vouchers: grant


def test_voucher_grant_success(world):
    ccas = world.funded_ccas("100.00")  # 105 B
    until = (today() + dt.timedelta(days=30)).isoformat()
    body = world.ok(world.post("vouchers", ccas, {
        "amount": "30.00", "beneficiary_ref": "BEN-001", "valid_until": until}))
    assert isinstance(body["code"], str) and body["code"]
    assert (body["amount"], body["remaining"], body["status"]) == ("30.00", "30.00", "open")
    assert body["valid_until"] == until
    assert_png(world, body["qr_url"], ccas)
    assert world.bsol(ccas) == "75.00"  # paid from the CCAS's Bou'Sols
    # Restricted to filières; valid through today.
    narrow = world.ok(world.post("vouchers", ccas, {
        "amount": 5, "beneficiary_ref": "BEN-002", "valid_until": today().isoformat(),
        "filieres": ["alimentation", "mobilite-douce"]}))
    assert narrow["amount"] == "5.00" and narrow["code"] != body["code"]
    assert world.bsol(ccas) == "70.00"


def test_voucher_codes_are_unguessable(world):
    ccas = world.funded_ccas()
    codes = [world.voucher(ccas, "1.00")["code"] for _ in range(5)]
    assert len(set(codes)) == 5
    for code in codes:
        symbols = code.replace("-", "").upper()
        # 80 random bits: at least 16 base-32 symbols, plus the check character.
        assert len(symbols) >= 17 and set(symbols) <= set(CROCKFORD), code


def test_voucher_grant_insufficient_funds(world):
    ccas = world.funded_ccas("20.00")  # 21 B
    assert_error(world.post("vouchers", ccas, {
        "amount": "21.01", "beneficiary_ref": "BEN-001",
        "valid_until": (today() + dt.timedelta(days=5)).isoformat()}),
        422, "insufficient_funds")
    assert world.bsol(ccas) == "21.00"


def test_voucher_grant_invalid_amount(world):
    ccas = world.funded_ccas()
    for amount in ("0", "-30.00", "30.001", "trente", False):
        assert_error(world.post("vouchers", ccas, {
            "amount": amount, "beneficiary_ref": "BEN-001",
            "valid_until": (today() + dt.timedelta(days=5)).isoformat()}),
            422, "invalid_amount")
    assert world.bsol(ccas) == "105.00"


def test_voucher_grant_invalid_date(world):
    ccas = world.funded_ccas()
    for until in ((today() - dt.timedelta(days=1)).isoformat(), "2020-01-01", "demain",
                  "2026-02-30", "31/12/2026", "", 20261231):
        error = assert_error(world.post("vouchers", ccas, {
            "amount": "10.00", "beneficiary_ref": "BEN-001", "valid_until": until}),
            None, "invalid_date")
        assert error["code"] == "invalid_date"
    assert world.bsol(ccas) == "105.00"


@pytest.mark.parametrize("role", ["soliste", "prestataire", "bank"])
def test_voucher_grant_role_not_allowed(world, role):
    user = world.user(role, filiere="alimentation" if role == "prestataire" else None)
    assert_error(world.post("vouchers", user, {
        "amount": "10.00", "beneficiary_ref": "BEN-001",
        "valid_until": (today() + dt.timedelta(days=5)).isoformat()}), 403, None)


# ---------------------------------------------------------------- vouchers: read


def test_voucher_read_by_ccas_and_prestataire(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    granted = world.voucher(ccas, "30.00", filieres=["alimentation"])
    for reader in (ccas, baker):
        body = world.ok(world.get(f"vouchers/{granted['code']}", reader), 200)
        assert body["code"] == granted["code"]
        assert (body["amount"], body["remaining"], body["status"]) == ("30.00", "30.00",
                                                                       "open")
        assert body["valid_until"] == granted["valid_until"]
        assert body["filieres"] == ["alimentation"]


def test_voucher_read_status_follows_redemptions(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "30.00")["code"]
    world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "10.00"}))
    body = world.ok(world.get(f"vouchers/{code}", baker), 200)
    assert (body["remaining"], body["status"]) == ("20.00", "open")
    world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "20.00"}))
    body = world.ok(world.get(f"vouchers/{code}", ccas), 200)
    assert (body["remaining"], body["status"]) == ("0.00", "redeemed")


def test_voucher_read_mistyped_and_unknown(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas)["code"]
    assert_error(world.get(f"vouchers/{mistyped(code)}", baker), 422, "invalid_code")
    unknown = unknown_code(world, code, ccas)
    assert_error(world.get(f"vouchers/{unknown}", baker), 404, "not_found")


@pytest.mark.parametrize("role", ["soliste", "bank"])
def test_voucher_read_role_not_allowed(world, role):
    ccas = world.funded_ccas()
    code = world.voucher(ccas)["code"]
    assert_error(world.get(f"vouchers/{code}", world.user(role)), 403, None)


# ---------------------------------------------------------------- vouchers: redeem


def test_voucher_redemption_success(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "30.00")["code"]
    body = world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "20.00"}))
    assert isinstance(body["entry_id"], int)
    assert (body["amount"], body["remaining"], body["status"]) == ("20.00", "10.00", "open")
    assert world.bsol(baker) == "20.00"
    last = world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": 10}))
    assert (last["amount"], last["remaining"], last["status"]) == ("10.00", "0.00",
                                                                   "redeemed")
    assert world.bsol(baker) == "30.00"


def test_voucher_redemption_voucher_redeemed(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "10.00")["code"]
    world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "10.00"}))
    assert_error(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "1.00"}),
                 409, "voucher_redeemed")
    assert world.bsol(baker) == "10.00"


def test_voucher_redemption_voucher_expired(world, ledger):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "10.00")["code"]
    # OUTSIDE THE CONTRACT: no call can grant a voucher with a past date and a voucher is
    # valid through its date, so the test moves its date to yesterday in the database.
    stored = code.replace("-", "").upper()[:16]
    with ledger.engine.begin() as conn:
        changed = conn.execute(
            sa.text("UPDATE vouchers SET valid_until = :d WHERE code = :c"),
            {"d": today() - dt.timedelta(days=1), "c": stored}).rowcount
    assert changed == 1
    assert_error(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "1.00"}),
                 410, "voucher_expired")
    assert world.bsol(baker) == "0.00"
    assert world.ok(world.get(f"vouchers/{code}", ccas), 200)["status"] == "expired"


def test_voucher_redemption_filiere_not_allowed(world):
    ccas = world.funded_ccas()
    cinema = world.prestataire("loisirs-culture")
    baker = world.prestataire("alimentation")
    code = world.voucher(ccas, "10.00", filieres=["alimentation"])["code"]
    assert_error(world.post(f"vouchers/{code}/redemptions", cinema, {"amount": "5.00"}),
                 403, "filiere_not_allowed")
    assert world.bsol(cinema) == "0.00"
    body = world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "5.00"}))
    assert body["remaining"] == "5.00"


def test_voucher_redemption_amount_exceeds_remaining(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "30.00")["code"]
    assert_error(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "30.01"}),
                 422, "amount_exceeds_remaining")
    world.ok(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "25.00"}))
    assert_error(world.post(f"vouchers/{code}/redemptions", baker, {"amount": "5.01"}),
                 422, "amount_exceeds_remaining")
    assert world.bsol(baker) == "25.00"


def test_voucher_redemption_not_found_and_invalid_code(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "30.00")["code"]
    unknown = unknown_code(world, code, baker)
    assert_error(world.post(f"vouchers/{unknown}/redemptions", baker, {"amount": "1.00"}),
                 404, "not_found")
    assert_error(world.post(f"vouchers/{mistyped(code)}/redemptions", baker,
                            {"amount": "1.00"}), 422, "invalid_code")
    assert world.bsol(baker) == "0.00"


def test_voucher_redemption_invalid_amount(world):
    ccas = world.funded_ccas()
    baker = world.prestataire()
    code = world.voucher(ccas, "30.00")["code"]
    for amount in ("0", "-1.00", "1.001", True):
        assert_error(world.post(f"vouchers/{code}/redemptions", baker, {"amount": amount}),
                     422, "invalid_amount")


@pytest.mark.parametrize("role", ["soliste", "ccas", "bank"])
def test_voucher_redemption_role_not_allowed(world, role):
    ccas = world.funded_ccas()
    code = world.voucher(ccas, "30.00")["code"]
    user = ccas if role == "ccas" else world.user(role)
    assert_error(world.post(f"vouchers/{code}/redemptions", user, {"amount": "1.00"}),
                 403, None)
    assert world.ok(world.get(f"vouchers/{code}", ccas), 200)["remaining"] == "30.00"


# ---------------------------------------------------------------- ledger summary


SUMMARY_KEYS = {"bsol_in_circulation", "bsol_electronic", "bsol_notes", "bsol_vouchers",
                "eur_reserve", "coverage_ratio"}


@pytest.mark.parametrize("role", ["admin", "bank"])
def test_ledger_summary(world, role):
    marie = world.soliste()
    world.exchange(marie, "20.00")
    user = world.user(role)
    body = world.ok(world.get("ledger/summary", user), 200)
    assert set(body) >= SUMMARY_KEYS
    assert body["bsol_in_circulation"] == "21.00"
    assert body["bsol_electronic"] == "21.00"
    assert body["bsol_notes"] == "0.00"
    assert body["bsol_vouchers"] == "0.00"
    assert body["eur_reserve"] == "21.00"  # 20 € and the 1 € bonus from the fund
    assert float(body["coverage_ratio"]) == pytest.approx(1.0)


def test_ledger_summary_counts_vouchers(world):
    ccas = world.funded_ccas("100.00")
    world.voucher(ccas, "30.00")
    body = world.ok(world.get("ledger/summary", world.bank()), 200)
    assert body["bsol_vouchers"] == "30.00"
    assert body["bsol_in_circulation"] == "105.00"
    parts = sum(float(body[k]) for k in ("bsol_electronic", "bsol_notes", "bsol_vouchers"))
    assert parts == pytest.approx(105.0)
    assert body["eur_reserve"] == "105.00"


@pytest.mark.parametrize("role", ["soliste", "prestataire", "ccas"])
def test_ledger_summary_role_not_allowed(world, role):
    user = world.user(role, filiere="alimentation" if role == "prestataire" else None)
    assert_error(world.get("ledger/summary", user), 403, None)


# ---------------------------------------------------------------- error shape everywhere


def test_errors_have_the_contract_shape_beyond_the_table(world):
    marie = world.soliste()
    assert_error(world.get("no-such-call", marie), 404, None)
    assert_error(world.call("DELETE", "payments", marie), 405, None)
    bad_json = world.client.post(f"{API}/payments", headers={
        **marie.auth, "Content-Type": "application/json"}, data=b"{not json")
    assert_error(bad_json, None, None)
    not_an_object = world.post("payments", marie, [1, 2])
    assert_error(not_an_object, None, None)
    missing = world.post("payments", marie, {})
    assert_error(missing, None, None)
    wrong_type = world.post("payments", marie, {"payee": 12, "amount": "1.00"})
    assert_error(wrong_type, None, None)
    huge_memo = world.post("payments", marie, {"payee": "P-000001", "amount": "1.00",
                                               "memo": "x" * 100_000})
    assert_error(huge_memo, None, None)


# ---------------------------------------------------------------- idempotency


def test_idempotent_payment_replays_the_first_response(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    body = {"payee": baker.code, "amount": "5.00", "memo": "Pain"}
    key = {"Idempotency-Key": "till-7-sale-42"}
    first = world.post("payments", marie, body, headers=key)
    second = world.post("payments", marie, body, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert first.get_json()["balance"] == "16.00"
    assert (world.bsol(marie), world.bsol(baker)) == ("16.00", "5.00")
    entries = world.ok(world.get("me/entries", marie), 200)["entries"]
    assert len(entries) == 2  # the exchange and one payment
    # Another key is another payment.
    third = world.post("payments", marie, body, headers={"Idempotency-Key": "till-7-sale-43"})
    assert third.status_code == 201 and third.get_json()["balance"] == "11.00"


def test_idempotent_exchange_and_reconversion(world):
    marie, baker = world.soliste(), world.prestataire()
    key = {"Idempotency-Key": "desk-1"}
    first = world.post("exchanges", world.bank(), {"party": marie.code, "euros": "100.00"},
                       headers=key)
    again = world.post("exchanges", world.bank(), {"party": marie.code, "euros": "100.00"},
                       headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert world.bsol(marie) == "105.00"
    world.pay(marie, baker, "100.00")
    key = {"Idempotency-Key": "desk-2"}
    body = {"prestataire": baker.code, "bousols": "100.00"}
    first = world.post("reconversions", world.bank(), body, headers=key)
    again = world.post("reconversions", world.bank(), body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert world.me(baker)["balances"] == {"BSOL": "0.00", "EUR": "95.00"}


def test_idempotent_voucher_grant_and_redemption(world):
    ccas = world.funded_ccas("100.00")
    baker = world.prestataire()
    grant = {"amount": "30.00", "beneficiary_ref": "BEN-IDEM",
             "valid_until": (today() + dt.timedelta(days=30)).isoformat()}
    key = {"Idempotency-Key": "grant-1"}
    first = world.post("vouchers", ccas, grant, headers=key)
    again = world.post("vouchers", ccas, grant, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert world.bsol(ccas) == "75.00"
    code = first.get_json()["code"]
    key = {"Idempotency-Key": "redeem-1"}
    first = world.post(f"vouchers/{code}/redemptions", baker, {"amount": "10.00"}, headers=key)
    again = world.post(f"vouchers/{code}/redemptions", baker, {"amount": "10.00"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert world.bsol(baker) == "10.00"
    assert world.ok(world.get(f"vouchers/{code}", ccas), 200)["remaining"] == "20.00"


def test_idempotent_pay_of_a_payment_request(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    request = _request(world, baker, "4.00")
    key = {"Idempotency-Key": "phone-1"}
    first = world.post(f"payment-requests/{request['id']}/pay", marie, {}, headers=key)
    again = world.post(f"payment-requests/{request['id']}/pay", marie, {}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()  # a replay, not already_paid
    assert (world.bsol(marie), world.bsol(baker)) == ("17.00", "4.00")


def test_idempotency_key_with_another_body_conflicts(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    key = {"Idempotency-Key": "till-7-sale-42"}
    world.ok(world.post("payments", marie, {"payee": baker.code, "amount": "5.00"},
                        headers=key))
    for other in ({"payee": baker.code, "amount": "6.00"},
                  {"payee": baker.code, "amount": "5.00", "memo": "autre"}):
        assert_error(world.post("payments", marie, other, headers=key),
                     409, "idempotency_conflict")
    assert (world.bsol(marie), world.bsol(baker)) == ("16.00", "5.00")


def test_idempotency_replays_an_error_outcome(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    body = {"payee": baker.code, "amount": "30.00"}
    key = {"Idempotency-Key": "retry-me"}
    first = world.post("payments", marie, body, headers=key)
    assert_error(first, 422, "insufficient_funds")
    world.exchange(marie, "20.00")  # now 42 B: enough, but the key's outcome stands
    again = world.post("payments", marie, body, headers=key)
    assert again.status_code == 422
    assert again.get_json() == first.get_json()
    assert (world.bsol(marie), world.bsol(baker)) == ("42.00", "0.00")
    # A fresh key does the payment.
    assert world.pay(marie, baker, "30.00",
                     headers={"Idempotency-Key": "retry-me-2"})["balance"] == "12.00"


@pytest.mark.parametrize("key", ["", "x" * 256, "clé-é", "tab\there"])
def test_idempotency_key_out_of_its_rules_never_500(world, key):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    response = world.post("payments", marie, {"payee": baker.code, "amount": "1.00"},
                          headers={"Idempotency-Key": key})
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_error(response, None, None)


def test_idempotency_key_at_255_characters_is_accepted(world):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    key = {"Idempotency-Key": "k" * 255}
    body = {"payee": baker.code, "amount": "1.00"}
    first = world.ok(world.post("payments", marie, body, headers=key))
    assert world.ok(world.post("payments", marie, body, headers=key)) == first
    assert world.bsol(marie) == "20.00"


def test_idempotent_payment_under_concurrency(world, app):
    marie, baker = world.soliste(), world.prestataire()
    world.exchange(marie, "20.00")
    body = {"payee": baker.code, "amount": "5.00", "memo": "Huit clics"}
    headers = {**marie.auth, "Idempotency-Key": "eight-clicks"}
    clients = [app.test_client() for _ in range(8)]
    lock = threading.Lock()
    seen_threads: set[int] = set()

    def worker(i: int):
        with lock:
            seen_threads.add(threading.get_ident())
        response = clients[i].post(f"{API}/payments", json=body, headers=headers)
        return response.status_code, response.get_json()

    outcomes = hammer(worker, threads=8)
    assert len(seen_threads) == 8
    statuses = {status for status, _ in outcomes}
    assert statuses == {201}, outcomes
    bodies = [b for _, b in outcomes]
    assert all(b == bodies[0] for b in bodies), bodies
    assert bodies[0]["balance"] == "16.00"
    assert (world.bsol(marie), world.bsol(baker)) == ("16.00", "5.00")
    assert len(world.ok(world.get("me/entries", baker), 200)["entries"]) == 1


# ---------------------------------------------------------------- exchange approvals (issue 13)


def test_an_exchange_above_the_thresholds_answers_202_pending(world):
    """Nothing moves; the same key answers the same pending request; another bank user
    approves it (once), the asker cannot (docs/duties.md)."""
    marie = world.soliste()
    asker, second = world.bank(), world.user("bank")
    headers = {"Idempotency-Key": "big-1"}
    response = world.post("exchanges", asker, {"party": marie.code, "euros": "750.00"},
                          headers=headers)
    body = world.ok(response, 202)
    assert body["status"] == "pending_approval" and body["id"] >= 1
    assert (body["party"], body["euros"], body["bousols"]) == (marie.code, "750.00", "787.50")
    assert world.bsol(marie) == "0.00"
    again = world.post("exchanges", asker, {"party": marie.code, "euros": "750.00"},
                       headers=headers)
    assert world.ok(again, 202) == body
    listed = world.ok(world.get("exchange-approvals", second), 200)["approvals"]
    assert [(a["id"], a["status"], a["euros"], a["rule"], a["requested_by"])
            for a in listed] == [(body["id"], "pending", "750.00", "operation",
                                  asker.username)]
    assert_error(world.post(f"exchange-approvals/{body['id']}/approve", asker), 403,
                 "second_person_required")
    approved = world.ok(world.post(f"exchange-approvals/{body['id']}/approve", second), 200)
    assert approved["status"] == "approved" and approved["entry_id"]
    assert approved["decided_by"] == second.username
    assert world.bsol(marie) == "787.50"
    assert_error(world.post(f"exchange-approvals/{body['id']}/approve", second), 409,
                 "exchange_approval_transition")
    assert world.bsol(marie) == "787.50"
    assert world.ok(world.get("exchange-approvals", second), 200)["approvals"] == []


def test_at_the_threshold_the_api_exchange_is_201(world):
    marie = world.soliste()
    assert world.exchange(marie, "500.00")["entry_id"]  # 201, posted
    body = world.ok(world.post("exchanges", world.bank(),
                               {"party": marie.code, "euros": "500.01"}), 202)
    assert body["status"] == "pending_approval"  # 1 000,01 € today


def test_a_pending_exchange_is_refused_with_a_reason_through_the_api(world):
    marie = world.soliste()
    body = world.ok(world.post("exchanges", world.bank(),
                               {"party": marie.code, "euros": "900.00"}), 202)
    second = world.user("bank")
    assert_error(world.post(f"exchange-approvals/{body['id']}/refuse", second,
                            {"reason": " "}), 422, None)
    refused = world.ok(world.post(f"exchange-approvals/{body['id']}/refuse", second,
                                  {"reason": "Fonds non justifiés"}), 200)
    assert (refused["status"], refused["reason"]) == ("refused", "Fonds non justifiés")
    assert world.bsol(marie) == "0.00"
    assert_error(world.post("exchange-approvals/999999/approve", second), 404,
                 "unknown_exchange_approval")
    assert_error(world.get("exchange-approvals", marie), 403, "forbidden")
