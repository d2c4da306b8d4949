"""Opening and closing the phases (B2B, CCAS): a dated decision of the association.

Each switch is a row of ``setting_changes`` (who, when, why, and the collective's decision
when a vote made it: bousol/ledger/association/decisions.py); the admin page shows since when each
phase is in its state and the whole history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from bousol.ledger.books import rules
from bousol.ledger.books.models import User
from bousol.ledger.kernel import inputs, settings
from bousol.ledger.kernel.actors import Actor, Role
from bousol.ledger.kernel.errors import InvalidInput
from bousol.ledger.kernel.models import SettingChange
from bousol.ledger.kernel.uow import UnitOfWork

changes_t, users_t = SettingChange.__table__, User.__table__


@dataclass(frozen=True)
class PhaseChange:
    value: str
    changed_at: dt.datetime
    by: str | None  # username, or None for the command line
    reason: str | None
    motion_id: int | None = None  # the collective's adopted decision behind the switch


@dataclass(frozen=True)
class PhaseState:
    phase: rules.Phase
    on: bool
    since: PhaseChange | None  # None: never switched (the default, off)
    history: list[PhaseChange]


def _phase(name: object) -> rules.Phase:
    try:
        phase = rules.Phase(name)
    except ValueError:
        phase = None
    if phase not in rules.SWITCHABLE:
        raise InvalidInput("Phase inconnue : b2b ou ccas.")
    return phase


def states(conn: Connection) -> list[PhaseState]:
    result = []
    for phase in rules.SWITCHABLE:
        rows = conn.execute(
            select(changes_t.c.value, changes_t.c.changed_at, users_t.c.username,
                   changes_t.c.reason, changes_t.c.motion_id)
            .outerjoin(users_t, users_t.c.id == changes_t.c.changed_by_user_id)
            .where(changes_t.c.key == f"phase.{phase.value}")
            .order_by(changes_t.c.id.desc())
        ).all()
        history = [PhaseChange(r.value, r.changed_at, r.username, r.reason, r.motion_id)
                   for r in rows]
        on = (history[0].value if history else settings.DEFAULTS[f"phase.{phase.value}"]) == "on"
        # The state holds since the oldest change of the latest run of equal values.
        run = []
        for change in history:
            if (change.value == "on") != on:
                break
            run.append(change)
        since = run[-1] if run else None
        result.append(PhaseState(phase, on, since, history))
    return result


def switch(uow: UnitOfWork, actor: Actor, *, phase: object, on: bool, reason: object) -> None:
    """The association opens or closes a phase; the reason (its decision) is required."""
    actor.require(Role.ADMIN)
    phase = _phase(phase)
    reason = inputs.memo(reason) if isinstance(reason, str) else None
    if not reason:
        raise InvalidInput("Indiquez la décision qui ouvre ou ferme la phase (ex. : "
                           "« Conseil collégial du 12/01/2027 »).")
    with uow:
        settings.change(uow.conn, f"phase.{phase.value}", "on" if on else "off",
                        user_id=actor.user_id, reason=reason)
        uow.commit()
