"""Who acts: the plain-value view of a user that operations receive."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bousol.ledger.kernel.errors import Forbidden


class Role(enum.StrEnum):
    ADMIN = "admin"
    BANK = "bank"
    SOLISTE = "soliste"
    PRESTATAIRE = "prestataire"
    CCAS = "ccas"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    role: Role
    party_id: int | None = None
    party_code: str | None = None
    username: str = "system"

    @property
    def idempotency_scope(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else "system"

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden()


# The command line acts as the system administrator (no user row behind it).
SYSTEM = Actor(user_id=None, role=Role.ADMIN, username="system")
