"""A short list shown a page at a time, numbered (``?page=N``).

For lists read whole and bounded by the territory, not by the journal (the approved
prestataires, those owed euros): the query reads them all, the page renders its own.
Lists that grow with the journal use keyset pages instead (docs/performance.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import request

T = TypeVar("T")


@dataclass(frozen=True)
class Numbered(Generic[T]):
    items: Sequence[T]  # this page's
    total: int  # of the whole list
    page: int
    pages: int


def numbered(items: Sequence[T], size: int, arg: str = "page") -> Numbered[T]:
    """The page the request's ``arg`` asks for (1 when missing or not a page number, the
    last one when beyond)."""
    pages = max(1, -(-len(items) // size))
    asked = request.args.get(arg, "1")
    page = min(int(asked), pages) if asked.isdigit() and int(asked) > 0 else 1
    return Numbered(items[(page - 1) * size: page * size], len(items), page, pages)
