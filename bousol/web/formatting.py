"""Jinja filters: French amounts (``1 234,50 B``) and dates (``22/11/2026``)."""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction

from flask import Flask
from flask_babel import get_locale
from flask_babel import gettext as _

from bousol import money
from bousol.ledger.clock import PARIS, as_utc
from bousol.ledger.models import FILIERE_LABELS, Filiere

UNITS = {"BSOL": "B", "EUR": "€"}


def to_paris(value: dt.datetime) -> dt.datetime:
    return as_utc(value).astimezone(PARIS)


def fr_money(cents: int | None, currency: str = "BSOL") -> str:
    return money.format_fr(cents or 0, UNITS.get(currency, currency))


def fr_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = to_paris(value)
    return value.strftime("%d/%m/%Y")


def fr_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return to_paris(value).strftime("%d/%m/%Y %H:%M")


def fr_percent(ratio: Fraction | None) -> str:
    """``Fraction(1)`` → ``100,0 %``, exact (no float), rounded half up; None → ``—``."""
    if ratio is None:
        return "—"
    tenths = math.floor(ratio * 1000 + Fraction(1, 2))
    return f"{tenths // 10},{tenths % 10} %"


def filiere_label(slug: str | None) -> str:
    if not slug:
        return ""
    try:
        return _(FILIERE_LABELS[Filiere(slug)])
    except ValueError:
        return slug


def register(app: Flask) -> None:
    app.add_template_filter(fr_money, "money")
    app.add_template_filter(fr_date, "date_fr")
    app.add_template_filter(fr_datetime, "datetime_fr")
    app.add_template_filter(filiere_label, "filiere")
    app.add_template_filter(fr_percent, "percent")
    app.jinja_env.globals["get_locale"] = get_locale
