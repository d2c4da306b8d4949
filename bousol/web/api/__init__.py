"""The JSON API v1 (``/api/v1``): tills, the mobile wallet, the association's scripts.

The contract is docs/api.md (and the shared api-v1.md). This module holds the
blueprint, the error shape (``{"error": {"code", "message"}}`` for every error under
``/api/v1``, unknown routes included), bearer-token authentication and the ``route``
decorator: each route declares its method, roles, request and response models, status
and named errors in one :class:`Operation`, which validates the request and, in the
registry, makes the OpenAPI description (:mod:`bousol.web.api.openapi`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import wraps

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from bousol.extensions import csrf, db
from bousol.ledger.access import api_tokens
from bousol.ledger.kernel.errors import DomainError
from bousol.web import unit_of_work

PREFIX = "/api/v1"
MAX_BODY = 64 * 1024  # bytes; a larger body: 413 payload_too_large
ANY = "any"  # roles: every authenticated user

bp = Blueprint("api", __name__, url_prefix=PREFIX)
csrf.exempt(bp)


# ---------------------------------------------------------------- errors


class ApiError(DomainError):
    """An error of the API layer itself (authentication, validation…)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status = status
        self.code = code
        self.headers = headers or {}


# Errors of the API layer, beside the ledger's DomainError codes (for the docs).
API_ERRORS: dict[str, int] = {
    "bad_request": 400,
    "invalid_json": 400,
    "unauthorized": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "insufficient_scope": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "duplicate_key": 400,
    "invalid_input": 422,
    "invalid_idempotency_key": 422,
    "too_many_attempts": 429,
    "internal_error": 500,
}

HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "La demande est mal formée."),
    401: ("unauthorized", "Authentification requise : envoyez « Authorization: Bearer "
                          "<jeton> »."),
    403: ("forbidden", "Vous n'avez pas le droit de faire cette opération."),
    404: ("not_found", "Introuvable."),
    405: ("method_not_allowed", "Cette méthode n'est pas possible sur cette adresse."),
    413: ("payload_too_large", f"Les données envoyées dépassent {MAX_BODY // 1024} Kio."),
    415: ("unsupported_media_type", "Envoyez du JSON (application/json)."),
    429: ("too_many_attempts", "Trop de demandes : réessayez plus tard."),
}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
    response = current_app.response_class(body, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_response(body: object, status: int = 200) -> Response:
    response = current_app.response_class(json.dumps(body, ensure_ascii=False), status=status,
                                          mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _domain_error_response(error: DomainError) -> Response:
    headers = dict(getattr(error, "headers", {}))
    if error.http_status == 429:
        headers["Retry-After"] = str(max(1, int(error.details.get("retry_after", 60))))
    if error.http_status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="bousol"')
    return error_response(error.http_status, error.code, error.message, headers)


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    return _domain_error_response(error)


def _is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _http_error_response(error: HTTPException) -> Response:
    status = error.code or 500
    code, message = HTTP_MESSAGES.get(status, ("error", "Une erreur s'est produite."))
    headers = {}
    if status == 405:
        allowed = [m for m in (getattr(error, "valid_methods", None) or [])]
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="bousol"'
    return error_response(status, code, message, headers)


def _internal_error_response() -> Response:
    return error_response(500, "internal_error",
                          "Une erreur inattendue s'est produite ; rien n'a été enregistré.")


@bp.record_once
def _json_errors_everywhere_under_the_prefix(state) -> None:
    """Unknown routes, wrong methods, NUL bytes, CSRF… are answered before any view of
    the blueprint runs, by the app's handlers (HTML pages). Under ``/api/v1`` they
    answer in JSON: wrap the app's handlers (registered before the blueprints)."""
    app = state.app
    handlers = app.error_handler_spec.setdefault(None, {})

    def wrap(code: int | None, exc_class: type[Exception], make: Callable) -> None:
        previous = handlers.setdefault(code, {}).get(exc_class)

        def handler(error):
            if _is_api_request():
                return make(error)
            if previous is not None:
                return previous(error)
            return error

        handlers[code][exc_class] = handler

    wrap(None, HTTPException, _http_error_response)
    wrap(500, InternalServerError, lambda _error: _internal_error_response())
    for code, by_class in list(handlers.items()):
        if code not in (None, 500):
            for exc_class in list(by_class):
                wrap(code, exc_class, _http_error_response)


# ---------------------------------------------------------------- authentication


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_token_user() -> api_tokens.TokenUser:
    return g.api_user


def _token_user(token: str) -> api_tokens.TokenUser | None:
    """The token's user, read by one statement. On PostgreSQL it runs in autocommit: one
    statement reads one consistent state by itself, and a BEGIN … COMMIT around it
    would cost two round trips on every call of the API."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            return api_tokens.user_for_token(conn, token)
    with unit_of_work(read_only=True) as uow:
        return api_tokens.user_for_token(uow.conn, token)


def _authenticate() -> api_tokens.TokenUser:
    token = _bearer_token()
    found = _token_user(token) if token is not None else None
    if found is None:
        message = ("Jeton invalide, expiré ou révoqué." if token is not None else
                   "Authentification requise : envoyez « Authorization: Bearer <jeton> ».")
        value = 'Bearer realm="bousol"' + (', error="invalid_token"' if token else "")
        raise ApiError(401, "unauthorized", message, {"WWW-Authenticate": value})
    g.api_user = found  # before the touch: its audit record names the token's user
    api_tokens.touch(unit_of_work(), found)
    return found


@bp.before_request
def _limit_body():
    # One byte more than allowed: a chunked body is cut there (silently), and
    # parse_json_body tells 413 by that byte.
    request.max_content_length = MAX_BODY + 1
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise RequestEntityTooLarge()


# ---------------------------------------------------------------- validation


def _no_constant(name: str):
    raise ValueError(f"{name} n'est pas un nombre JSON")


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    # json.loads keeps the last of two equal keys: {"amount":"1.00","amount":"2.00"}
    # would charge 2.00 where a proxy or a log reading the first sees 1.00.
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _is_json_media_type() -> bool:
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    return request.mimetype == "application/json" and charset in ("utf-8", "utf8")


def _has_body() -> bool:
    # Told by the headers: a form body may have been parsed (and its stream drained)
    # before the view runs.
    return bool(request.content_length) or "chunked" in request.headers.get(
        "Transfer-Encoding", "").lower()


def parse_json_body() -> object:
    # A body is read as JSON only when it says so: a form post or text/plain sent by a
    # browser to the API (no CORS preflight for those) is refused, not guessed at.
    if _has_body() and not _is_json_media_type():
        raise ApiError(415, "unsupported_media_type",
                       "Envoyez du JSON : « Content-Type: application/json » (UTF-8).")
    # Read at most one byte past the limit: 413 even without a Content-Length (chunked).
    data = request.stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise RequestEntityTooLarge()
    if not data.strip():
        return {}
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_no_constant,
                          object_pairs_hook=_object_without_duplicates)
    except _DuplicateKey as error:
        raise ApiError(400, "duplicate_key",
                       f"Le champ « {str(error)[:80]} » figure deux fois dans le corps de la "
                       "demande.") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "Le corps de la demande n'est pas du JSON "
                                            "valide (UTF-8).") from None


AMOUNT_FIELDS = frozenset({"amount", "euros", "bousols"})
DATE_FIELDS = frozenset({"valid_until"})


def _validation_error(error: ValidationError) -> ApiError:
    problems = error.errors(include_url=False, include_input=False)
    codes = []
    for problem in problems:
        where = problem["loc"][0] if problem["loc"] else None
        if problem["type"] == "invalid_amount" or (where in AMOUNT_FIELDS
                                                    and problem["type"] != "extra_forbidden"):
            codes.append("invalid_amount")
        elif problem["type"] == "invalid_date" or (where in DATE_FIELDS
                                                    and problem["type"] != "extra_forbidden"):
            codes.append("invalid_date")
        else:
            codes.append("invalid_input")
    code = next((c for c in ("invalid_amount", "invalid_date") if c in codes), "invalid_input")
    messages = []
    for problem in problems[:5]:
        where = ".".join(str(part) for part in problem["loc"]) or "corps"
        if problem["type"] == "extra_forbidden":
            messages.append(f"champ inconnu « {where} »")
        elif problem["type"] == "missing":
            messages.append(f"champ obligatoire « {where} » manquant")
        else:
            messages.append(f"« {where} » : {problem['msg']}")
    return ApiError(422, code, "Donnée invalide : " + " ; ".join(messages) + ".")


def parse_body(model: type[BaseModel]) -> BaseModel:
    data = parse_json_body()
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_input", "Le corps de la demande doit être un objet JSON.")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _validation_error(error) from None


IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key() -> str | None:
    values = request.headers.getlist(IDEMPOTENCY_HEADER)
    if not values:
        return None
    if len(values) > 1 or not _KEY_RE.fullmatch(values[0]):
        raise ApiError(422, "invalid_idempotency_key",
                       "En-tête Idempotency-Key invalide : de 1 à 255 caractères ASCII "
                       "imprimables, une seule fois.")
    return values[0]


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: dict
    description: str = ""


@dataclass
class Operation:
    """One call of the API, as the route declares it and OpenAPI describes it."""

    rule: str
    method: str
    endpoint: str
    summary: str
    roles: tuple[str, ...] | str | None  # None: no token; ANY: any authenticated user
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[str, ...] = ()
    idempotent: bool = False
    media_type: str = "application/json"
    query: tuple[QueryParam, ...] = ()
    description: str = ""
    extra: bool = False  # more than the shared contract
    path_params: dict[str, dict] = field(default_factory=dict)
    scope: str | None = None  # the token's scope it needs (None: no token; ANY: any)
    # A 202 the call may answer instead (an exchange waiting for a second person).
    accepted: type[BaseModel] | None = None


REGISTRY: list[Operation] = []


def route(rule: str, method: str, *, summary: str, roles: tuple[str, ...] | str | None,
          body: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
          status: int = 200, errors: tuple[str, ...] = (), idempotent: bool = False,
          media_type: str = "application/json", query: tuple[QueryParam, ...] = (),
          description: str = "", extra: bool = False,
          path_params: dict[str, dict] | None = None, scope: str | None = None,
          accepted: type[BaseModel] | None = None):
    """Register a view of the API: authentication, roles, the token's scope, body and
    key, then the view (called with the path's values, ``body=`` and ``key=`` as
    declared). The view returns an instance of ``response`` (sent with ``status``) or a
    Flask response.

    ``scope``: the token scope the call needs (``api_tokens.SCOPES``; ``ANY``: any
    token). A ``GET`` needs ``read`` unless told otherwise; any other method must name
    its scope (a new call is never open to every token by omission)."""
    if roles is None:
        scope = None
    elif scope is None and method == "GET":
        scope = "read"
    elif scope is None:
        raise TypeError(f"route {method} {rule}: declare the token scope it needs (scope=)")
    elif scope != ANY and scope not in api_tokens.SCOPES:
        raise ValueError(f"route {method} {rule}: unknown scope {scope!r}")

    def decorator(view):
        operation = Operation(rule, method, view.__name__, summary, roles, body, response,
                              status, errors, idempotent, media_type, query, description,
                              extra, path_params or {}, scope, accepted)
        REGISTRY.append(operation)

        @wraps(view)
        def wrapped(**values):
            if operation.roles is not None:
                user = _authenticate()
                if operation.roles != ANY and user.role not in operation.roles:
                    raise ApiError(403, "forbidden",
                                   "Votre rôle ne permet pas cette opération.")
                if operation.scope != ANY and not user.allows(operation.scope):
                    raise ApiError(
                        403, "insufficient_scope",
                        f"Ce jeton n'a pas le droit « {operation.scope} » que demande "
                        "cette opération : demandez un jeton qui l'a.",
                        {"WWW-Authenticate": 'Bearer realm="bousol", '
                                             f'error="insufficient_scope", '
                                             f'scope="{operation.scope}"'})
            if operation.body is not None:
                values["body"] = parse_body(operation.body)
            if operation.idempotent:
                values["key"] = idempotency_key()
            result = view(**values)
            if isinstance(result, Response):
                return result
            if result is None:
                return current_app.response_class(status=operation.status)
            if operation.accepted is not None and isinstance(result, operation.accepted):
                return json_response(result.model_dump(mode="json"), 202)
            return json_response(result.model_dump(mode="json"), operation.status)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        return wrapped

    return decorator


from bousol.web.api import openapi, routes  # noqa: E402, F401  (their routes join bp)
