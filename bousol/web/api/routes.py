"""The calls of the JSON API v1 (docs/api.md). Thin: parse (the decorator), call one
service of the ledger, answer from what it returned (so that a replayed idempotent
call answers the same body)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

from flask import current_app, request, url_for

from bousol.ledger.access import api_tokens
from bousol.ledger.books import operations, queries, statements
from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.desk import exchange_approvals
from bousol.ledger.kernel import money
from bousol.ledger.kernel.clock import as_utc
from bousol.ledger.kernel.errors import AlreadyPaid, Forbidden, NotFound
from bousol.ledger.merchants import payment_requests
from bousol.ledger.models import Role
from bousol.web import qr, unit_of_work
from bousol.web.api import (
    ANY,
    ApiError,
    QueryParam,
    current_token_user,
    openapi,
    route,
    schemas,
)

ID_PARAM = {"type": "integer", "minimum": 1, "maximum": schemas.ID_MAX}
CODE_PARAM = schemas.VOUCHER_CODE_PARAM
MONEY_ERRORS = ("invalid_amount", "invalid_input", "invalid_idempotency_key",
                "idempotency_conflict")


def _iso(value: dt.datetime) -> str:
    return as_utc(value).astimezone(dt.UTC).isoformat()


def _plain(cents: int) -> str:
    return money.format_plain(cents)


def _actor():
    return current_token_user().actor


def _png(data: str):
    response = current_app.response_class(qr.png(data), mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# ---------------------------------------------------------------- tokens


@route("/tokens", "POST", summary="Obtenir un jeton (nom d'utilisateur et mot de passe)",
       roles=None, body=schemas.TokenIn, response=schemas.TokenOut, status=201,
       errors=("invalid_credentials", "too_many_attempts", "invalid_input", "invalid_json",
               "invalid_scope"),
       description="Throttled like the login page (per username and per address) and "
                   "capped per user and address an hour: 429 with Retry-After. "
                   "`scopes`: what the token may do (default: everything the role may "
                   "do); `expires_in_days`: its lifetime, 1 to the maximum (default: the "
                   "maximum).")
def create_token(body: schemas.TokenIn):
    issued = api_tokens.issue(unit_of_work, username=body.username, password=body.password,
                              address=request.remote_addr or "unknown", label=body.label,
                              ttl=dt.timedelta(days=openapi.token_max_days()),
                              scopes=list(body.scopes) if body.scopes is not None else None,
                              days=body.expires_in_days)
    return schemas.TokenOut(token=issued.token, expires_at=_iso(issued.expires_at),
                            id=issued.id, scopes=list(issued.scopes))


@route("/tokens", "GET", summary="Mes jetons actifs", roles=ANY,
       response=schemas.TokenList, extra=True)
def list_tokens():
    user = current_token_user()
    with unit_of_work(read_only=True) as uow:
        found = api_tokens.active_tokens(uow.conn, user.user_id)
    return schemas.TokenList(tokens=[
        schemas.TokenInfo(id=t.id, label=t.label, created_at=_iso(t.created_at),
                          expires_at=_iso(t.expires_at),
                          last_used_at=_iso(t.last_used_at) if t.last_used_at else None,
                          current=t.id == user.token_id, scopes=list(t.scopes))
        for t in found])


@route("/tokens/current", "DELETE", summary="Révoquer le jeton de cette demande",
       roles=ANY, status=204, extra=True, scope=ANY)
def revoke_current_token():
    user = current_token_user()
    api_tokens.revoke(unit_of_work(), user.actor, user.token_id)


@route("/tokens/<int:id>", "DELETE",
       summary="Révoquer un jeton (le sien ; un admin : celui de tout utilisateur)",
       roles=ANY, status=204, errors=("not_found",), extra=True,
       path_params={"id": ID_PARAM}, scope="tokens")
def revoke_token(id: int):  # the contract names it {id}
    api_tokens.revoke(unit_of_work(), _actor(), id)


# ---------------------------------------------------------------- me


@route("/me", "GET", summary="Qui je suis, mes soldes", roles=ANY, response=schemas.MeOut)
def me():
    user = current_token_user()
    balances = {"BSOL": 0, "EUR": 0}
    if user.party_id is not None:
        with unit_of_work(read_only=True) as uow:
            balances = queries.party_balances(uow.conn, user.party_id)
    party = None
    if user.party_code is not None:
        party = schemas.PartyOut(code=user.party_code, kind=user.party_kind,
                                 name=user.party_name)
    return schemas.MeOut(username=user.username, role=user.role, party=party,
                         balances=schemas.Balances(BSOL=_plain(balances.get("BSOL", 0)),
                                                   EUR=_plain(balances.get("EUR", 0))))


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not low <= int(raw) <= high:
        raise ApiError(422, "invalid_input",
                       f"Paramètre « {name} » invalide : un entier de {low} à {high}.")
    return int(raw)


@route("/me/entries", "GET", summary="Mes écritures, les plus récentes d'abord",
       roles=ANY, response=schemas.EntriesOut, errors=("forbidden", "invalid_input"),
       query=(QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 100,
                                   "default": 20}, "How many entries (1 to 100)."),
              QueryParam("before", {"type": "integer", "minimum": 1,
                                    "maximum": schemas.ID_MAX},
                         "Only entries older than this one: the `next` of the previous "
                         "page.")),
       description="Callers without a party (admin, bank): 403 forbidden.")
def my_entries():
    user = current_token_user()
    if user.party_id is None:
        raise Forbidden("Cet utilisateur n'a pas de compte : il n'a pas d'écritures.")
    limit = _int_arg("limit", 20, 1, 100)
    before = _int_arg("before", None, 1, schemas.ID_MAX)  # entry ids are 32-bit
    with unit_of_work(read_only=True) as uow:
        page = statements.statement_page(uow.conn, user.party_id, statements.Filters(),
                                         limit=limit, before_entry_id=before)
    return schemas.EntriesOut(
        entries=[schemas.EntryOut(
            id=line.entry_id, kind=line.kind, amount=_plain(line.amount),
            currency=line.currency, counterparty=line.counterparty_code,
            counterparty_name=line.counterparty_name, created_at=_iso(line.created_at),
            memo=line.memo) for line in page.lines],
        next=str(page.next_before) if page.next_before is not None else None)


# ---------------------------------------------------------------- money


@route("/exchanges", "POST", summary="Change d'euros en Bou'Sols (virement reçu)",
       roles=("bank",), body=schemas.ExchangeIn, response=schemas.ExchangeOut, status=201,
       idempotent=True, scope="desk", accepted=schemas.ExchangePendingOut,
       errors=("unknown_party", "flow_not_allowed",
               *MONEY_ERRORS),
       description="To a soliste, or to the CCAS funding its aid (its own account). "
                   "The euros arrive by transfer (into the reserve). Above the approval "
                   "thresholds (per operation, per member and day): 202 with "
                   "`status: pending_approval` and the request's `id`; nothing moves "
                   "until another user approves it (docs/duties.md).")
def create_exchange(body: schemas.ExchangeIn, key: str | None):
    result = desk_exchange.exchange(unit_of_work(), _actor(), party_code=body.party,
                                 euros=body.euros, tender=operations.Tender.TRANSFER,
                                 idempotency_key=key)
    if result.pending:
        return schemas.ExchangePendingOut(status="pending_approval", id=result.approval_id,
                                          party=result.party_code,
                                          euros=_plain(result.euro_cents),
                                          bousols=_plain(result.bousol_cents))
    return schemas.ExchangeOut(entry_id=result.entry_id, euros=_plain(result.euro_cents),
                               bousols=_plain(result.bousol_cents),
                               balance=_plain(result.balance_cents))


def _approval_out(found: exchange_approvals.Request) -> schemas.ExchangeApprovalOut:
    return schemas.ExchangeApprovalOut(
        id=found.id, status=found.status, party=found.party_code,
        euros=_plain(found.euro_cents), rule=found.rule, requested_by=found.requested_by,
        requested_at=_iso(found.requested_at), decided_by=found.decided_by,
        reason=found.reason, entry_id=found.entry_id)


@route("/exchange-approvals", "GET", summary="Changes en attente d'approbation",
       roles=("bank",), response=schemas.ExchangeApprovalList, extra=True,
       description="Oldest first (at most 200).")
def list_exchange_approvals():
    with unit_of_work(read_only=True) as uow:
        found = exchange_approvals.pending(uow.conn)
    return schemas.ExchangeApprovalList(approvals=[_approval_out(f) for f in found])


@route("/exchange-approvals/<int:id>/approve", "POST",
       summary="Approuver un change en attente (une deuxième personne)",
       roles=("bank",), body=schemas.Empty, response=schemas.ExchangeApprovalOut,
       scope="desk", extra=True, path_params={"id": ID_PARAM},
       errors=("unknown_exchange_approval", "exchange_approval_transition",
               "second_person_required", "bonus_advance_exceeded", "day_closed",
               "flow_not_allowed", "invalid_amount"),
       description="Posts the exchange (201 semantics, answered 200 with the request and "
                   "its `entry_id`); never by the user who asked (403 "
                   "`second_person_required`); a second approval: 409.")
def approve_exchange(id: int, body: schemas.Empty):
    return _approval_out(exchange_approvals.approve(unit_of_work(), _actor(), id))


@route("/exchange-approvals/<int:id>/refuse", "POST",
       summary="Refuser un change en attente, avec un motif",
       roles=("bank",), body=schemas.RefusalIn, response=schemas.ExchangeApprovalOut,
       scope="desk", extra=True, path_params={"id": ID_PARAM},
       errors=("unknown_exchange_approval", "exchange_approval_transition",
               "second_person_required"))
def refuse_exchange(id: int, body: schemas.RefusalIn):
    return _approval_out(exchange_approvals.refuse(unit_of_work(), _actor(), id, body.reason))


@route("/payments", "POST", summary="Payer un adhérent", roles=("soliste", "prestataire"),
       body=schemas.PaymentIn, response=schemas.PaymentOut, status=201, idempotent=True,
       scope="pay",
       errors=("insufficient_funds", "flow_not_allowed", "unknown_party", *MONEY_ERRORS))
def create_payment(body: schemas.PaymentIn, key: str | None):
    result = operations.pay(unit_of_work(), _actor(), payee_code=body.payee,
                            amount=body.amount, memo=body.memo, idempotency_key=key)
    return schemas.PaymentOut(entry_id=result.entry_id, amount=_plain(result.amount_cents),
                              payee=result.payee_code, balance=_plain(result.balance_cents))


def _request_out(view: payment_requests.RequestView) -> schemas.PaymentRequestOut:
    return schemas.PaymentRequestOut(
        id=view.id, amount=_plain(view.amount_cents), status=view.status,
        pay_url=url_for("pay.pay_request", token=view.token, _external=True),
        qr_url=url_for("api.payment_request_qr", id=view.id, _external=True),
        short_code=view.short_code, expires_at=_iso(view.expires_at))


@route("/payment-requests", "POST", summary="Demander un paiement (à la caisse)",
       roles=("prestataire",), body=schemas.PaymentRequestIn,
       response=schemas.PaymentRequestOut, status=201, scope="till",
       errors=("invalid_amount", "invalid_input", "flow_not_allowed"),
       description="`pay_url` is the web pay link (whoever opens it pays); `qr_url` "
                   "serves its QR code as a PNG (the same token).")
def create_payment_request(body: schemas.PaymentRequestIn):
    view = payment_requests.create_till_request(unit_of_work(), _actor(), amount=body.amount,
                                                reference=body.memo)
    return _request_out(view)


def _own_request(request_id: int) -> payment_requests.RequestView:
    user = current_token_user()
    view = None
    if user.party_id is not None:
        with unit_of_work(read_only=True) as uow:
            view = payment_requests.for_payee(uow.conn, user.party_id, request_id)
    if view is None:
        raise NotFound("Demande de paiement introuvable.")
    return view


@route("/payment-requests/<int:id>", "GET",
       summary="Une demande de paiement (la sienne) et son état", roles=("prestataire",),
       response=schemas.PaymentRequestOut, errors=("not_found",), extra=True,
       path_params={"id": ID_PARAM})
def get_payment_request(id: int):
    return _request_out(_own_request(id))


@route("/payment-requests/<int:id>/qr.png", "GET",
       summary="Le QR code du lien de paiement (PNG)", roles=("prestataire",),
       media_type="image/png", errors=("not_found",), extra=True,
       path_params={"id": ID_PARAM})
def payment_request_qr(id: int):
    view = _own_request(id)
    return _png(url_for("pay.pay_request", token=view.token, _external=True))


@route("/payment-requests/<int:id>/pay", "POST",
       summary="Payer une demande de paiement", roles=("soliste", "prestataire"),
       body=schemas.Empty, response=schemas.PaymentOut, status=201, idempotent=True,
       scope="pay",
       errors=("already_paid", "request_expired", "request_closed", "request_not_for_you",
               "insufficient_funds", "flow_not_allowed", "not_found", "invalid_input",
               "invalid_idempotency_key", "idempotency_conflict"),
       path_params={"id": ID_PARAM})
def pay_payment_request(id: int, body: schemas.Empty, key: str | None):
    paid = payment_requests.pay_by_id(unit_of_work(), _actor(), request_id=id,
                                      idempotency_key=key)
    if paid.replayed:
        # The web pay link gives a second tap of the same payer its payment back; in the
        # API the only replay is the Idempotency-Key (stored as not replayed).
        raise AlreadyPaid()
    return schemas.PaymentOut(entry_id=paid.entry_id, amount=_plain(paid.amount_cents),
                              payee=paid.payee_code, balance=_plain(paid.balance_cents))


@route("/reconversions", "POST", summary="Reconversion des Bou'Sols d'un prestataire",
       roles=("bank",), body=schemas.ReconversionIn, response=schemas.ReconversionOut,
       status=201, idempotent=True, scope="desk",
       errors=("insufficient_funds", "unknown_party", "reserve_insufficient",
               "flow_not_allowed", *MONEY_ERRORS))
def create_reconversion(body: schemas.ReconversionIn, key: str | None):
    result = operations.reconvert(unit_of_work(), _actor(), prestataire_code=body.prestataire,
                                  bousols=body.bousols, idempotency_key=key)
    return schemas.ReconversionOut(entry_id=result.entry_id, bousols=_plain(result.bousol_cents),
                                   fee=_plain(result.fee_cents), euros=_plain(result.euro_cents),
                                   balance=_plain(result.balance_cents))


# ---------------------------------------------------------------- vouchers


def _voucher_qr_url(code: str) -> str:
    return url_for("api.voucher_qr", code=code, _external=True)


@route("/vouchers", "POST", summary="Attribuer un bon d'aide", roles=("ccas",),
       body=schemas.VoucherIn, response=schemas.VoucherGranted, status=201, idempotent=True,
       scope="vouchers",
       errors=("insufficient_funds", "invalid_amount", "invalid_date", "invalid_input",
               "unknown_account", "invalid_idempotency_key", "idempotency_conflict"),
       description="Paid from the CCAS's own Bou'Sols, or from the programme `programme`. "
                   "`qr_url` serves the QR code of the voucher's till link (PNG).")
def create_voucher(body: schemas.VoucherIn, key: str | None):
    view = vouchers.grant(unit_of_work(), _actor(), beneficiary_ref=body.beneficiary_ref,
                          amount=body.amount, programme_id=body.programme,
                          valid_until=body.valid_until,
                          filieres=list(body.filieres) if body.filieres else None,
                          idempotency_key=key)
    # The grant's own response: a voucher just granted is open with all of its value.
    # Built so, a replay of the key answers the same body even after the voucher was
    # partly spent (the contract: same status, same body).
    return schemas.VoucherGranted(code=view.code, amount=_plain(view.amount_cents),
                                  remaining=_plain(view.amount_cents), status="open",
                                  valid_until=view.valid_until.isoformat(),
                                  qr_url=_voucher_qr_url(view.code))


def _visible_voucher(code: str) -> vouchers.VoucherView:
    """A prestataire sees any voucher (never its beneficiary); a CCAS only its own."""
    user = current_token_user()
    with unit_of_work(read_only=True) as uow:
        view = vouchers.lookup(uow.conn, code)  # invalid_code, not_found
        if user.role == Role.CCAS:
            own = vouchers.vouchers_by_ids(uow.conn, user.actor, [view.id])
            if not own:
                raise NotFound("Aucun bon d'aide ne porte ce code.")
    return view


@route("/vouchers/<code>", "GET", summary="Un bon d'aide", roles=("ccas", "prestataire"),
       response=schemas.VoucherOut, errors=("not_found", "invalid_code"),
       path_params={"code": CODE_PARAM})
def get_voucher(code: str):
    view = _visible_voucher(code)
    return schemas.VoucherOut(code=view.code, amount=_plain(view.amount_cents),
                              remaining=_plain(view.remaining_cents), status=view.status,
                              valid_until=view.valid_until.isoformat(),
                              filieres=list(view.filieres) if view.filieres else None)


@route("/vouchers/<code>/qr.png", "GET",
       summary="Le QR code du lien de caisse d'un bon d'aide (PNG)", roles=("ccas",),
       media_type="image/png", errors=("not_found", "invalid_code"), extra=True,
       path_params={"code": CODE_PARAM})
def voucher_qr(code: str):
    view = _visible_voucher(code)
    return _png(url_for("merchant.voucher_redeem", code=view.code, _external=True))


@route("/vouchers/<code>/redemptions", "POST", summary="Encaisser un bon d'aide",
       roles=("prestataire",), body=schemas.RedemptionIn, response=schemas.RedemptionOut,
       status=201, idempotent=True, scope="till",
       errors=("voucher_redeemed", "voucher_expired", "voucher_cancelled",
               "filiere_not_allowed", "amount_exceeds_remaining", "flow_not_allowed",
               "not_found", "invalid_code", *MONEY_ERRORS),
       path_params={"code": CODE_PARAM})
def redeem_voucher(code: str, body: schemas.RedemptionIn, key: str | None):
    result = vouchers.redeem(unit_of_work(), _actor(), code=code, amount=body.amount,
                             idempotency_key=key)
    return schemas.RedemptionOut(entry_id=result.entry_id, amount=_plain(result.amount_cents),
                                 remaining=_plain(result.remaining_cents),
                                 status=result.status)


# ---------------------------------------------------------------- the ledger


def coverage_text(ratio) -> str | None:
    """4 decimals, rounded down (coverage is never overstated); None: nothing circulates."""
    if ratio is None:
        return None
    value = Decimal(ratio.numerator) / Decimal(ratio.denominator)
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_DOWN))


@route("/ledger/summary", "GET", summary="Masse monétaire et couverture",
       roles=("admin", "bank"), response=schemas.SummaryOut)
def ledger_summary():
    with unit_of_work(read_only=True) as uow:
        supply = queries.money_supply(uow.conn)
    return schemas.SummaryOut(
        bsol_in_circulation=_plain(supply.bsol_in_circulation),
        bsol_electronic=_plain(supply.bsol_electronic), bsol_notes=_plain(supply.bsol_notes),
        bsol_vouchers=_plain(supply.bsol_vouchers), eur_reserve=_plain(supply.eur_reserve),
        coverage_ratio=coverage_text(supply.coverage_ratio))

