"""The public directory: "Où payer en Bou'Sol ?" — the approved prestataires, by filière
and commune, and one prestataire's public page. Only approved prestataires appear; a suspended one
disappears until it is reinstated (the statuses are :mod:`bousol.ledger.merchants.approval`'s).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection, select

from bousol.ledger.books.models import PartyKind
from bousol.ledger.merchants.approval import Status, parties_t

# ---------------------------------------------------------------- the public directory


@dataclass(frozen=True)
class DirectoryEntry:
    """What the public sees of an approved prestataire: its business, never a person."""

    code: str
    name: str
    filiere: str
    commune: str | None
    address: str | None
    opening_hours: str | None
    description: str | None


# The only columns the directory ever reads: no contact, phone, email, IBAN, SIRET.
_PUBLIC_COLUMNS = ("code", "name", "filiere", "commune", "address", "opening_hours",
                   "description")


def _public_query():
    return (select(*(parties_t.c[name] for name in _PUBLIC_COLUMNS))
            .where(parties_t.c.kind == PartyKind.PRESTATAIRE.value,
                   parties_t.c.status == Status.APPROVED.value))


def fold(text: str | None) -> str:
    """For searching: no accents, no case, one kind of apostrophe, single spaces."""
    decomposed = unicodedata.normalize("NFKD", (text or "").replace("’", "'"))
    plain = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(plain.casefold().split())


def directory(conn: Connection, *, q: str | None = None, filiere: str | None = None,
              commune: str | None = None) -> list[DirectoryEntry]:
    """Approved prestataires, by name; ``q`` in the name and ``commune`` compared without
    accents or case (on both databases alike: the list is small, filtered here)."""
    query = _public_query()
    if filiere:
        query = query.where(parties_t.c.filiere == filiere)
    entries = sorted((DirectoryEntry(**row._mapping) for row in conn.execute(query).all()),
                     key=lambda e: (fold(e.name), e.code))  # É with the E, on both databases
    if q and fold(q):
        wanted = fold(q)
        entries = [e for e in entries if wanted in fold(e.name)]
    if commune and fold(commune):
        town = fold(commune)
        entries = [e for e in entries if fold(e.commune) == town]
    return entries


def directory_communes(conn: Connection) -> list[str]:
    """The communes of approved prestataires (for the directory's filter), sorted."""
    seen: dict[str, str] = {}
    for name in conn.execute(
        select(parties_t.c.commune).distinct()
        .where(parties_t.c.kind == PartyKind.PRESTATAIRE.value,
               parties_t.c.status == Status.APPROVED.value,
               parties_t.c.commune.is_not(None))
    ).scalars():
        seen.setdefault(fold(name), name)
    return sorted(seen.values(), key=fold)


def directory_entry(conn: Connection, code: str) -> DirectoryEntry | None:
    """One approved prestataire's public page; None for anyone else."""
    if not isinstance(code, str) or len(code) > 16:
        return None
    row = conn.execute(_public_query().where(parties_t.c.code == code)).first()
    return None if row is None else DirectoryEntry(**row._mapping)
