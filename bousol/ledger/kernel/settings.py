"""Dated settings: phases, fees. A change is a new row; the latest row per key wins."""

from __future__ import annotations

import re

from sqlalchemy import Connection, func, insert, select

from bousol.ledger.kernel.errors import InvalidInput
from bousol.ledger.kernel.models import SettingChange
from bousol.ledger.kernel.rows import Rows

DEFAULTS: dict[str, str] = {
    "phase.b2b": "off",
    "phase.ccas": "off",
    "reconversion.fee_bp": "500",  # 5 %, in basis points
    "membership.fee_cents": "300",  # the yearly membership fee of a soliste, 3,00 €
    "membership.fee_cents.prestataires": "2000",  # of a prestataire, 20,00 €
    "membership.fee_cents.acteurs_locaux": "5000",  # of a local partner, 50,00 €
    # A motion is adopted when more members of the collective vote for than against
    # and at least this share of the collective took part (abstaining counts).
    "decisions.quorum_pct": "50",
    "notes.reactivation_fee_bp": "500",  # 5 % of an expired note's face value, in euros
    "notes.validity_months": "6",  # how long a reactivated note stays valid
    "payment_requests.ttl_minutes": "15",  # a till request expires after this long
    "payment_requests.invoice_ttl_days": "30",  # a B2B invoice request, after this
    "refunds.max_days": "30",  # a payment can be refunded this many days after it
    "ccas.bonus": "on",  # does the 5 % bonus apply when the CCAS funds its aid
    # Separation of duties (docs/duties.md): the bonus fund advances at most this much
    # (its balance never below minus it); past it, exchanges are refused.
    "exchange.bonus_advance_max_cents": "100000",  # 1 000,00 € of bonus advanced
    # An exchange above either waits for a second person's approval (docs/duties.md):
    # the euros of one operation, and a member's euros exchanged on one Paris day
    # (that one included, pending requests counted).
    "exchange.approval_above_cents": "50000",  # 500,00 € per operation
    "exchange.approval_daily_above_cents": "100000",  # 1 000,00 € per member and day
}

_changes = SettingChange.__table__


def _on_off(value: str) -> str:
    if value not in ("on", "off"):
        raise InvalidInput("Valeur attendue : on ou off.")
    return value


def _basis_points(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 <= int(value) <= 10_000:
        raise InvalidInput("Valeur attendue : un entier de 0 à 10000 points de base (500 = 5 %).")
    return str(int(value))


def _fee_cents(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,5}", value) or int(value) > 10_000:
        raise InvalidInput("Valeur attendue : un montant en centimes, de 0 à 10000 (100,00 €).")
    return str(int(value))


def _positive_basis_points(value: str) -> str:
    # A fee of 0 would make an entry of zero: a free reactivation is not a reactivation.
    if _basis_points(value) == "0":
        raise InvalidInput("Valeur attendue : un entier de 1 à 10000 points de base (500 = 5 %).")
    return str(int(value))


def _months(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,2}", value) or not 1 <= int(value) <= 60:
        raise InvalidInput("Valeur attendue : un nombre de mois, de 1 à 60.")
    return str(int(value))


def _bounded(low: int, high: int, unit: str):
    def check(value: str) -> str:
        if not re.fullmatch(r"[0-9]{1,6}", value) or not low <= int(value) <= high:
            raise InvalidInput(f"Valeur attendue : un nombre de {unit}, de {low} à {high}.")
        return str(int(value))

    return check


VALIDATORS = {
    "phase.b2b": _on_off,
    "phase.ccas": _on_off,
    "reconversion.fee_bp": _basis_points,
    "membership.fee_cents": _fee_cents,
    "membership.fee_cents.prestataires": _fee_cents,
    "membership.fee_cents.acteurs_locaux": _fee_cents,
    "decisions.quorum_pct": None,  # set below (needs _bounded)
    "notes.reactivation_fee_bp": _positive_basis_points,
    "notes.validity_months": _months,
    "payment_requests.ttl_minutes": _bounded(1, 1440, "minutes"),
    "payment_requests.invoice_ttl_days": _bounded(1, 365, "jours"),
    "refunds.max_days": _bounded(0, 365, "jours"),
    "ccas.bonus": _on_off,
}


VALIDATORS["decisions.quorum_pct"] = _bounded(0, 100, "pour cent")


def _cents(low: int, high: int):
    def check(value: str) -> str:
        if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
            raise InvalidInput(f"Valeur attendue : un montant en centimes, de {low} à {high}.")
        return str(int(value))

    return check


VALIDATORS["exchange.bonus_advance_max_cents"] = _cents(0, 100_000_000)
VALIDATORS["exchange.approval_above_cents"] = _cents(0, 100_000_000)
VALIDATORS["exchange.approval_daily_above_cents"] = _cents(0, 100_000_000)


def current(conn: Connection, keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    latest = (
        select(func.max(_changes.c.id)).where(_changes.c.key.in_(keys)).group_by(_changes.c.key)
    )
    rows = conn.execute(
        select(_changes.c.key, _changes.c.value).where(_changes.c.id.in_(latest))
    ).all()
    values = {key: DEFAULTS[key] for key in keys}
    values.update({row.key: row.value for row in rows})
    return values


def validate(key: str, value: object) -> str:
    """The canonical form of a setting's new value, or InvalidInput."""
    if key not in DEFAULTS:
        raise InvalidInput(f"Réglage inconnu : {key}.")
    return VALIDATORS[key](str(value).strip())


def change(
    conn: Connection, key: str, value: str, *, user_id: int | None, reason: str | None = None,
    motion_id: int | None = None,
) -> None:
    """A new value for a setting; ``motion_id``: the adopted decision that made it."""
    value = validate(key, value)
    if reason is not None and len(reason) > 500:
        raise InvalidInput("Motif trop long (500 caractères au plus).")
    conn.execute(
        insert(_changes).values(key=key, value=value, changed_by_user_id=user_id, reason=reason,
                                motion_id=motion_id)
    )


def history(conn: Connection, key: str) -> Rows:
    return conn.execute(
        select(_changes).where(_changes.c.key == key).order_by(_changes.c.id.desc())
    ).all()
