"""Idempotency keys: a retried request returns the first outcome, never a second movement.

The key, a hash of the request and the outcome are written in the same transaction as
the movement, under a unique constraint on (scope, key). A failure caused by the
state of the ledger (insufficient funds…) is remembered as well, so that a retry with
the same key cannot succeed later by surprise. When two requests with one key race,
the loser's insert violates the constraint, its work is rolled back, and it answers
with the winner's stored outcome.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from bousol.ledger.kernel import errors
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.driver_sql import DriverStatement, timestamp
from bousol.ledger.kernel.models import IdempotencyKey, utcnow
from bousol.ledger.kernel.uow import UnitOfWork

T = TypeVar("T")
keys_t = IdempotencyKey.__table__
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def _error_classes() -> dict[str, type[errors.DomainError]]:
    found: dict[str, type[errors.DomainError]] = {}
    stack = [errors.DomainError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def request_hash(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise errors.InvalidInput(
            "Clé d'idempotence invalide : de 1 à 255 caractères ASCII imprimables."
        )


def _replay(row, digest: str, result_type: type[T]) -> T:
    request_hash, outcome, result = row
    if request_hash != digest:
        raise errors.IdempotencyConflict()
    stored = json.loads(result)
    if outcome == "error":
        cls = _error_classes().get(stored["code"], errors.DomainError)
        raise cls(stored["message"], **stored.get("details", {}))
    return result_type(**stored)


_FIND = DriverStatement(
    select(keys_t.c.request_hash, keys_t.c.outcome, keys_t.c.result).where(
        keys_t.c.scope == bindparam("scope"), keys_t.c.key == bindparam("key")
    )
)
_INSERT = DriverStatement(
    insert(keys_t).values(
        {c: bindparam(c) for c in ("scope", "key", "request_hash", "outcome", "result",
                                   "entry_id", "created_at")}
    )
)


def _find(uow: UnitOfWork, scope: str, key: str):
    return _FIND.first(uow.conn, {"scope": scope, "key": key})


def _store(uow: UnitOfWork, scope: str, key: str, digest: str, outcome: str, result: dict,
           entry_id: int | None = None) -> None:
    _INSERT.execute(uow.conn, {
        "scope": scope, "key": key, "request_hash": digest, "outcome": outcome,
        "result": json.dumps(result), "entry_id": entry_id,
        "created_at": timestamp(uow.conn, utcnow()),
    })


def run(
    uow: UnitOfWork,
    actor: Actor,
    key: str | None,
    request: dict,
    result_type: type[T],
    work: Callable[[UnitOfWork], T],
) -> T:
    """Run ``work`` in one unit of work, at most once per (actor, key)."""
    if key is None:
        with uow:
            result = work(uow)
            uow.commit()
            return result

    check_key(key)
    scope, digest = actor.idempotency_scope, request_hash(request)
    try:
        with uow:
            row = _find(uow, scope, key)
            if row is not None:
                return _replay(row, digest, result_type)
            result = work(uow)
            _store(uow, scope, key, digest, "ok",
                   dataclasses.asdict(result),  # type: ignore[call-overload]
                   getattr(result, "entry_id", None))
            uow.commit()
            return result
    except errors.IdempotencyConflict:
        raise
    except errors.DomainError as failure:
        # Two requests with one key can both miss the key before either stores it; the
        # loser may then fail on the winner's effect (the balance it took). The
        # winner's stored success is the answer, not the loser's refusal.
        with uow:
            row = _find(uow, scope, key)
        if row is not None and row[1] == "ok" and row[0] == digest:  # hash, outcome
            return _replay(row, digest, result_type)
        _remember_failure(uow, scope, key, digest, failure)
        raise
    except IntegrityError:
        # Lost a race on the key: the other request's outcome is the answer.
        with uow:
            row = _find(uow, scope, key)
        if row is None:
            raise
        return _replay(row, digest, result_type)


def _remember_failure(
    uow: UnitOfWork, scope: str, key: str, digest: str, failure: errors.DomainError
) -> None:
    try:
        with uow:
            if _find(uow, scope, key) is not None:
                return  # a replayed failure, or another request stored its outcome
            _store(uow, scope, key, digest, "error",
                   {"code": failure.code, "message": failure.message,
                    "details": failure.details})
            uow.commit()
    except IntegrityError:
        pass  # another request with this key stored its outcome first
