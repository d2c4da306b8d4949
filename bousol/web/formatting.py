"""Jinja filters: French amounts (``1 234,50 B``) and dates (``22/11/2026``)."""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction

from flask import Flask
from flask_babel import get_locale, get_translations
from flask_babel import gettext as _
from flask_babel import ngettext as _babel_ngettext

from bousol.ledger.kernel import money
from bousol.ledger.kernel.clock import PARIS, as_utc
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


def _choose(singular: str, plural: str, n: int) -> str:
    """The form of a plural message for ``n``, untranslated placeholders kept. French is
    the source language and has no catalog, so gettext would apply the English rule
    (0 takes the plural: « 0 rappels »); in French 0 and 1 take the singular."""
    locale = get_locale()
    if locale is None or locale.language == "fr":
        return singular if abs(n) <= 1 else plural
    return get_translations().ungettext(singular, plural, n)


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """flask_babel's ``ngettext`` with the French rule for 0 (:func:`_choose`)."""
    locale = get_locale()
    if locale is not None and locale.language != "fr":
        return _babel_ngettext(singular, plural, num, **variables)
    variables.setdefault("num", num)
    return _choose(singular, plural, num) % variables


def fr_basis_points(bp: int) -> str:
    """``500`` → ``5 %``, ``250`` → ``2,5 %``, ``1`` → ``0,01 %`` (exact, no float)."""
    whole, rest = divmod(bp, 100)
    return f"{whole},{rest:02d}".rstrip("0").rstrip(",") + "\u00a0%"


def setting_value(key: str, value: str | None) -> str:
    """A setting's stored value the way a treasurer reads it: basis points as percent,
    cents as euros, durations with their unit, on/off in words. The stored form (what
    ``flask bousol setting`` takes) is shown beside it by the pages that need it; a value
    that does not parse is shown as stored."""
    if value is None:
        return ""
    if value in ("on", "off"):
        if key.startswith("phase."):
            return _("ouverte") if value == "on" else _("fermée")
        return _("oui") if value == "on" else _("non")
    if not (value.isascii() and value.isdigit()):
        return value
    number = int(value)
    if key.endswith("_bp"):
        return fr_basis_points(number)
    if key.endswith("_pct"):
        return f"{number}\u00a0%"
    if "_cents" in key:
        return fr_money(number, "EUR")
    if key.endswith("_minutes"):
        return ngettext("%(num)d minute", "%(num)d minutes", number)
    if key.endswith("_days"):
        return ngettext("%(num)d jour", "%(num)d jours", number)
    if key.endswith("_months"):
        return ngettext("%(num)d mois", "%(num)d mois", number)
    return value


def elides(name: str | None) -> bool:
    """Whether French « de » before this name becomes « d' » (« d'Éco-Habitat »,
    « de Marie »): a vowel first. Words with a first h are left with « de », the safe
    side for a proper name (h aspiré or not cannot be told from the spelling)."""
    first = (name or "").lstrip()[:1].lower()
    return bool(first) and first in "aeiouyàâäéèêëîïôöùûü"


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
    app.jinja_env.globals["setting_value"] = setting_value
    app.jinja_env.globals["elides"] = elides
    # Templates' ngettext with the French rule for 0 (Jinja's newstyle wrapper kept: the
    # message is markup, its variables are escaped).
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: get_translations().ugettext(s), ngettext=_choose, newstyle=True,
        pgettext=lambda c, s: get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: get_translations().unpgettext(c, s, p, n))
    app.jinja_env.globals["get_locale"] = get_locale
