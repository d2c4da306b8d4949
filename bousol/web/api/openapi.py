"""The OpenAPI 3.1 description of the API, generated from the route registry and the
pydantic models that validate the requests (never written by hand beside them)."""

from __future__ import annotations

import copy
import re
from functools import cache

from flask import current_app
from pydantic.json_schema import models_json_schema

from bousol.ledger.kernel.errors import DomainError
from bousol.web.api import (
    ANY,
    API_ERRORS,
    IDEMPOTENCY_HEADER,
    PREFIX,
    REGISTRY,
    Operation,
    json_response,
    route,
    schemas,
)

REF = "#/components/schemas/{model}"
_PARAM_RE = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
STATUS_TEXT = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 410: "Gone", 413: "Payload too large",
    415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many requests",
}


def error_statuses() -> dict[str, int]:
    """Every error code the API may answer with, and its status."""
    found: dict[str, int] = {}
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls.http_status)
        stack.extend(cls.__subclasses__())
    found.update(API_ERRORS)
    return found


def openapi_path(rule: str) -> str:
    return _PARAM_RE.sub(r"{\1}", rule)


def _error_codes(operation: Operation) -> list[str]:
    codes = list(operation.errors)
    if operation.roles is not None:
        codes += ["unauthorized"]
        if operation.roles != ANY:
            codes += ["forbidden"]
        if operation.scope != ANY:
            codes += ["insufficient_scope"]
    if operation.body is not None:
        codes += ["invalid_json", "duplicate_key", "unsupported_media_type", "invalid_input",
                  "payload_too_large"]
    if operation.path_params:
        codes += ["not_found"]
    seen: dict[str, None] = {}
    for code in codes:
        seen.setdefault(code)
    return list(seen)


def _responses(operation: Operation, names: dict) -> dict:
    responses: dict[str, dict] = {}
    if operation.status == 204:
        responses[str(operation.status)] = {"description": "Done (no content)."}
    elif operation.response is None and operation.media_type == "application/json":
        responses[str(operation.status)] = {
            "description": operation.summary,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    elif operation.media_type == "application/json":
        responses[str(operation.status)] = {
            "description": operation.summary,
            "content": {"application/json": {"schema": {"$ref": names[operation.response]}}},
        }
    else:
        responses[str(operation.status)] = {
            "description": operation.summary,
            "content": {operation.media_type: {"schema": {"type": "string",
                                                          "format": "binary"}}},
        }
    if operation.accepted is not None:
        responses["202"] = {
            "description": "Accepted, not done yet: waiting for a second person's approval.",
            "content": {"application/json": {"schema": {"$ref": names[operation.accepted]}}},
        }
    statuses = error_statuses()
    by_status: dict[int, list[str]] = {}
    for code in _error_codes(operation):
        by_status.setdefault(statuses.get(code, 422), []).append(code)
    for status, codes in sorted(by_status.items()):
        header = {}
        if status == 429:
            header = {"headers": {"Retry-After": {
                "description": "Seconds to wait.", "schema": {"type": "integer"}}}}
        if status == 401:
            header = {"headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}}
        responses[str(status)] = {
            "description": f"{STATUS_TEXT.get(status, 'Error')}: "
                           + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
            **header,
        }
    responses["default"] = {
        "description": "Any other error (same shape).",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }
    return responses


def _parameters(operation: Operation) -> list[dict]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": schema}
                  for name, schema in operation.path_params.items()]
    for name in _PARAM_RE.findall(operation.rule):
        if name not in operation.path_params:
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string"}})
    parameters += [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                    "description": q.description} for q in operation.query]
    if operation.idempotent:
        parameters.append({
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "1 to 255 printable ASCII characters. A repeat with the same "
                           "key and body returns the first response; another body: 409 "
                           "`idempotency_conflict`.",
            "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
        })
    return parameters


def _roles_text(operation: Operation) -> str:
    if operation.roles is None:
        return "No token needed."
    scope = ("" if operation.scope == ANY else
             f" Token scope: `{operation.scope}` (else 403 `insufficient_scope`).")
    if operation.roles == ANY:
        return "Any authenticated user." + scope
    return "Roles: " + ", ".join(operation.roles) + "." + scope


@cache
def document() -> dict:
    """The OpenAPI 3.1 document (built once: the registry is fixed at import)."""
    models: list = [(schemas.Error, "serialization")]
    for operation in REGISTRY:
        if operation.body is not None:
            models.append((operation.body, "validation"))
        if operation.response is not None:
            models.append((operation.response, "serialization"))
        if operation.accepted is not None:
            models.append((operation.accepted, "serialization"))
    unique = list(dict.fromkeys(models))
    keys, definitions = models_json_schema(unique, ref_template=REF)
    names = {model: keys[(model, mode)]["$ref"] for model, mode in unique}

    paths: dict[str, dict] = {}
    for operation in REGISTRY:
        item = {
            "operationId": operation.endpoint,
            "summary": operation.summary,
            "description": " ".join(filter(None, [
                _roles_text(operation), operation.description,
                "(More than the shared contract.)" if operation.extra else ""])),
            "tags": [operation.rule.strip("/").split("/")[0]],
            "responses": _responses(operation, names),
        }
        parameters = _parameters(operation)
        if parameters:
            item["parameters"] = parameters
        if operation.body is not None:
            item["requestBody"] = {
                "required": operation.body is not schemas.Empty,
                "content": {"application/json": {"schema": {"$ref": names[operation.body]}}},
            }
        if operation.roles is None:
            item["security"] = []
        else:  # OpenAPI 3.1: the "roles" an http scheme needs, here the token's scope
            item["security"] = [{"bearer": [] if operation.scope == ANY
                                 else [operation.scope]}]
        paths.setdefault(openapi_path(operation.rule), {})[operation.method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bou'Sol JSON API",
            "version": "1.0.0",
            "description": "The ledger of the Bou'Sol for tills, the mobile wallet and the "
                           "association's scripts (docs/api.md). Errors: "
                           '{"error": {"code", "message"}}.',
        },
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "POST /tokens gives one."}},
        },
    }


@route("/openapi.json", "GET", summary="La description OpenAPI 3.1 de l'API", roles=None,
       errors=(), media_type="application/json",
       description="This document (generated from the schemas that validate requests).")
def openapi_json():
    return json_response(document_for(token_max_days()))


def token_max_days() -> int:
    """The longest token lifetime a client may ask for (``API_TOKEN_TTL_DAYS``, at most
    ``schemas.TOKEN_MAX_DAYS``): also the lifetime of a token that does not choose."""
    days = int(current_app.config.get("API_TOKEN_TTL_DAYS", schemas.TOKEN_MAX_DAYS))
    return max(1, min(days, schemas.TOKEN_MAX_DAYS))


@cache
def document_for(max_days: int) -> dict:
    """The document, with the token lifetime's bound in force."""
    found = copy.deepcopy(document())
    days = found["components"]["schemas"]["TokenIn"]["properties"]["expires_in_days"]
    for branch in days.get("anyOf", [days]):
        if branch.get("type") == "integer":
            branch["maximum"] = max_days
    return found
