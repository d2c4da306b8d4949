"""Idempotency keys: a retried request returns the first outcome, never a second movement.

The key, a hash of the request and the outcome are written in the same transaction as
the movement, under a unique constraint on (scope, key). A failure caused by the
state of the ledger (insufficient funds…) is remembered as well, so that a retry with
the same key cannot succeed later by surprise.

The key is not looked up before the work (a round trip every first request would pay):
the work runs, then the key row is inserted ``ON CONFLICT DO NOTHING``. A key already
stored (a retry, or a request that raced this one and committed first) inserts
nothing: the work is rolled back and the stored outcome is the answer, as it would have
been had it been found first (the same outcome, the same conflict on another request
body, the same remembered failure). A retry costs its work once more, rolled back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
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
_KEY_COLUMNS = ("scope", "key", "request_hash", "outcome", "result", "entry_id", "created_at")
# INSERT … ON CONFLICT (scope, key) DO NOTHING RETURNING id: no row back when the key is
# already stored (both dialects have the clause; each its own construct).
_INSERT = {
    name: DriverStatement(
        dialect.insert(keys_t).values({c: bindparam(c) for c in _KEY_COLUMNS})
        .on_conflict_do_nothing(index_elements=["scope", "key"]).returning(keys_t.c.id))
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def _find(uow: UnitOfWork, scope: str, key: str):
    return _FIND.first(uow.conn, {"scope": scope, "key": key})


def _store(uow: UnitOfWork, scope: str, key: str, digest: str, outcome: str, result: dict,
           entry_id: int | None = None) -> bool:
    """Insert the key's row; False when the key was already stored (nothing inserted)."""
    return bool(_INSERT[uow.conn.dialect.name].rows(uow.conn, {
        "scope": scope, "key": key, "request_hash": digest, "outcome": outcome,
        "result": json.dumps(result), "entry_id": entry_id,
        "created_at": timestamp(uow.conn, utcnow()),
    }))


def _stored_outcome(uow: UnitOfWork, scope: str, key: str, digest: str,
                    result_type: type[T]) -> T:
    """The outcome stored for a key this transaction could not insert (it is there: the
    insert saw it, committed)."""
    with uow:
        row = _find(uow, scope, key)
    if row is None:  # pragma: no cover - a stored key is never deleted
        raise RuntimeError(f"idempotency key {key!r} vanished")
    return _replay(row, digest, result_type)


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
            result = work(uow)
            stored = _store(uow, scope, key, digest, "ok",
                            dataclasses.asdict(result),  # type: ignore[call-overload]
                            getattr(result, "entry_id", None))
            if stored:
                uow.commit()
                return result
    except errors.IdempotencyConflict:
        raise
    except errors.DomainError as failure:
        # A stored key's outcome comes first, as if it had been found before the work:
        # a retry fails on its own first attempt's effect (the balance it took), a
        # request that raced a winner fails on the winner's; the stored success, the
        # stored refusal or the conflict with another request body is the answer.
        with uow:
            row = _find(uow, scope, key)
        if row is not None:
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
    # The key was already stored: the insert did nothing, and leaving the block rolled
    # the work back. The stored outcome is the answer.
    return _stored_outcome(uow, scope, key, digest, result_type)


def _remember_failure(
    uow: UnitOfWork, scope: str, key: str, digest: str, failure: errors.DomainError
) -> None:
    try:
        with uow:
            if _find(uow, scope, key) is not None:
                return  # a replayed failure, or another request stored its outcome
            if _store(uow, scope, key, digest, "error",
                      {"code": failure.code, "message": failure.message,
                       "details": failure.details}):
                uow.commit()
    except IntegrityError:
        pass  # another request with this key stored its outcome first
