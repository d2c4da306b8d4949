"""A status that moves only along a table: the state machines of the domains (a motion,
a prestataire's approval, a voucher, a payment request, a payout batch, a day at the
desk…). No Flask here.

The table is the rule: ``{(from, action): to}``, every pair not in it refused with the
domain's own error (its class, its words, built by ``refuse(state, action)``). Where the
action is simply the status to reach (``requested → confirmed``), :meth:`StateMachine.moves`
builds the table from the allowed pairs. The table is listed for the tests and the docs
(:meth:`StateMachine.rows`, :meth:`StateMachine.describe`).

States and actions are compared as given: a ``StrEnum`` member and its stored string
are the same key, so a status read from the database needs no conversion, and a
status no table knows ("bogus") is refused like any other move.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=Hashable)
A = TypeVar("A", bound=Hashable)

Refusal = Callable[[Any, Any], BaseException]


class StateMachine(Generic[S, A]):
    """``table``: ``{(from, action): to}``. ``refuse(state, action)``: the error raised
    for any other pair (called with the values as the caller gave them)."""

    def __init__(self, table: Mapping[tuple[S, A], S], refuse: Refusal) -> None:
        self._table: Mapping[tuple[S, A], S] = MappingProxyType(dict(table))
        self._refuse = refuse

    @classmethod
    def moves(cls, pairs: Iterable[tuple[S, S]], refuse: Refusal) -> StateMachine[S, S]:
        """A machine whose actions are the statuses they reach: ``{(from, to), …}``."""
        return StateMachine({(source, target): target for source, target in pairs}, refuse)

    @property
    def table(self) -> Mapping[tuple[S, A], S]:
        """``{(from, action): to}``, read-only."""
        return self._table

    def can(self, state: object, action: object) -> bool:
        try:
            return (state, action) in self._table
        except TypeError:  # an unhashable value is no state of any table
            return False

    def next(self, state: object, action: object) -> S:
        """The status ``action`` leads to from ``state``, or the domain's refusal."""
        if not self.can(state, action):
            raise self._refuse(state, action) from None
        return self._table[(state, action)]  # type: ignore[index]  # can() found it

    def allowed(self, state: object) -> list[A]:
        """The actions possible from ``state``, in the table's order."""
        return [action for (source, action) in self._table if source == state]

    def states(self) -> list[S]:
        """Every status the table names, as a source or a target, in its order."""
        seen: dict[S, None] = {}
        for (source, _action), target in self._table.items():
            seen.setdefault(source)
            seen.setdefault(target)
        return list(seen)

    def actions(self) -> list[A]:
        return list(dict.fromkeys(action for (_source, action) in self._table))

    def rows(self) -> list[tuple[S, A, S]]:
        """``(from, action, to)`` for each allowed move, in the table's order."""
        return [(source, action, target)
                for (source, action), target in self._table.items()]

    def describe(self) -> str:
        """One line per move, ``from --action--> to`` (the docs' picture)."""
        return "\n".join(f"{_word(source)} --{_word(action)}--> {_word(target)}"
                         for source, action, target in self.rows())


def _word(value: object) -> str:
    return str(getattr(value, "value", value))
