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
  ``invariant(fn, scoped=True)``: ``fn(conn, scope)`` with a :class:`VerifyScope`, for
  a check that can, like ``verify``'s own, look only at the entries a run covers
  (the tail after the last sealed month and the months drawn; all with ``--full``);
- ``after_post(fn)``: ``fn(conn, posted)`` with a :class:`PostedEntry`, called by
  ``posting.post`` in the entry's own transaction once its postings are written (the
  association keeps its report figures so); it may write, never refuse;
- ``facts_changed(fn)``: ``fn(conn, entry_ids)``, called by a domain that changed what
  other domains derive from these entries without touching the entries themselves (the
  CCAS's erasure unlinks a soliste from the vouchers its redemptions paid): the figures
  kept from them are derived again, in the same transaction;
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

from sqlalchemy import Connection, or_


class DomainsNotLoaded(RuntimeError):
    """A programming error, not a user's: call ``bousol.ledger.domains.load()`` first."""


@dataclass(frozen=True)
class ReversalCandidate:
    entry_id: int
    kind: str
    account_ids: tuple[int, ...]  # the accounts the entry touched (locked, under_locks)


@dataclass(frozen=True, slots=True)
class PostedEntry:
    """An entry just written, as ``posting.post`` knows it: ``legs`` are its
    ``posting.Leg``s (each with the locked account: code, currency, party, kind)."""

    entry_id: int
    kind: str
    created_at: Any  # dt.datetime, aware UTC
    actor_user_id: int | None
    legs: tuple[Any, ...]
    reverses_id: int | None
    details: dict | None


ReversalGuard = Callable[[Connection, ReversalCandidate], None]
AfterPost = Callable[[Connection, PostedEntry], None]
# fn(conn), or fn(conn, scope) when registered scoped; returns a books.verify.Check
Invariant = Callable[..., Any]

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
_after_post: list[AfterPost] = []
_facts_changed: list[Callable[[Connection, list[int]], None]] = []
_loaded = False


def irreversible_kind(kind: str, reason: str) -> None:
    _irreversible[kind] = reason


def reversal_guard(guard: ReversalGuard, *, under_locks: bool = False) -> ReversalGuard:
    target = _guards_under if under_locks else _guards_before
    if guard not in target:
        target.append(guard)
    return guard


@dataclass(frozen=True)
class VerifyScope:
    """The entries a ``verify`` run covers (bousol/ledger/books/seals.py): every one when
    ``full``, else those after ``after_entry_id`` and those of the sealed months drawn,
    ``ranges`` of ``(after, last]`` ids; ``months`` are the months drawn (first days)."""

    full: bool
    after_entry_id: int
    ranges: tuple[tuple[int, int], ...] = ()
    months: tuple[Any, ...] = ()  # dt.date

    def entry_condition(self, entry_id: Any) -> Any:
        """A SQL condition on an entry-id column: the entry is in the run's scope."""
        return or_(entry_id > self.after_entry_id,
                   *[entry_id.between(lo + 1, hi) for lo, hi in self.ranges if hi > lo])


_scoped: list[Invariant] = []


def invariant(check: Invariant, *, scoped: bool = False) -> Invariant:
    if check not in _invariants:
        _invariants.append(check)
    if scoped and check not in _scoped:
        _scoped.append(check)
    return check


def is_scoped(check: Invariant) -> bool:
    return check in _scoped


def after_post(fn: AfterPost) -> AfterPost:
    if fn not in _after_post:
        _after_post.append(fn)
    return fn


def facts_changed(fn: Callable[[Connection, list[int]], None]):
    if fn not in _facts_changed:
        _facts_changed.append(fn)
    return fn


def entries_facts_changed(conn: Connection, entry_ids: list[int]) -> None:
    """Tell the domains that keep figures: these entries' facts changed (fails closed)."""
    if not _loaded:
        raise DomainsNotLoaded("bousol.ledger.domains.load() first")
    for fn in _facts_changed:
        fn(conn, entry_ids)


def after_post_hooks() -> list[AfterPost]:
    """What ``post`` calls (fails closed: an entry written before the domains are loaded
    would miss the figures they keep)."""
    if not _loaded:
        require_loaded()
    return _after_post


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
