"""What the books ask the domains, without importing them.

The books (posting, operations, verify) sit below the domains: they must not know that
notes, closings, transfer files, refunds or aid vouchers exist. Yet a reversal must be
refused when an entry moved paper notes, and ``verify`` must prove that the notes'
account matches the stock. So each domain *registers* what the books must consult:

- ``irreversible_kind(kind, reason)``: entries of that kind are never reversed (their
  effects are not only postings);
- ``reversal_guard(fn)`` / ``reversal_guard(fn, under_locks=True)``: called with the
  connection and the :class:`ReversalCandidate`; raises a domain error to refuse. Guards
  under the locks run once the entry's accounts are locked (what they read is then
  stable: the domain's own writers take the same locks);
- ``invariant(fn)``: ``fn(conn) -> Check``, one more line in ``verify``'s report;
- ``private_kinds(spec)``: entries the association's journal shows without their memo
  (the CCAS's aid: a voucher's code is a bearer instrument and names a beneficiary),
  with the counterpart the domain chooses to name.

Registration happens when :func:`bousol.ledger.domains.load` imports the domains. The
books *fail closed*: a reversal or a verification asked before the domains are loaded
raises :class:`DomainsNotLoaded` rather than skip checks it cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection


class DomainsNotLoaded(RuntimeError):
    """A programming error, not a user's: call ``bousol.ledger.domains.load()`` first."""


@dataclass(frozen=True)
class ReversalCandidate:
    entry_id: int
    kind: str
    account_ids: tuple[int, ...]  # the accounts the entry touched (locked, under_locks)


ReversalGuard = Callable[[Connection, ReversalCandidate], None]
Invariant = Callable[[Connection], Any]  # returns a bousol.ledger.books.verify.Check

@dataclass(frozen=True)
class PrivateKinds:
    """Kinds of entry whose memo and clerk the journal hides (``staff_named``: the kinds
    whose clerk stays named); ``counterpart(conn, entry_ids) -> {entry_id: name}``."""

    kinds: frozenset[str]
    staff_named: frozenset[str]
    counterpart: Callable[[Connection, list[int]], dict[int, str]]


_irreversible: dict[str, str] = {}
_private: list[PrivateKinds] = []
_guards_before: list[ReversalGuard] = []
_guards_under: list[ReversalGuard] = []
_invariants: list[Invariant] = []
_loaded = False


def irreversible_kind(kind: str, reason: str) -> None:
    _irreversible[kind] = reason


def reversal_guard(guard: ReversalGuard, *, under_locks: bool = False) -> ReversalGuard:
    target = _guards_under if under_locks else _guards_before
    if guard not in target:
        target.append(guard)
    return guard


def invariant(check: Invariant) -> Invariant:
    if check not in _invariants:
        _invariants.append(check)
    return check


def private_kinds(spec: PrivateKinds) -> None:
    if spec not in _private:
        _private.append(spec)


def private_specs() -> tuple[PrivateKinds, ...]:
    require_loaded()
    return tuple(_private)


def mark_loaded() -> None:
    global _loaded
    _loaded = True


def require_loaded() -> None:
    if not _loaded:
        raise DomainsNotLoaded(
            "The ledger's domains are not loaded: call bousol.ledger.domains.load() "
            "(create_app does) before reversing or verifying.")


def irreversible_reason(kind: str) -> str | None:
    require_loaded()
    return _irreversible.get(kind)


def guards(*, under_locks: bool) -> tuple[ReversalGuard, ...]:
    require_loaded()
    return tuple(_guards_under if under_locks else _guards_before)


def invariants() -> tuple[Invariant, ...]:
    require_loaded()
    return tuple(_invariants)
