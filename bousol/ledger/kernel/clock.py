"""The one clock of the ledger: every "now" and every "today" comes from here.

Boulogne-sur-Mer's calendar: membership years, business days, note validity and
transfer dates follow the local day, not UTC; timestamps are stored in UTC.

The clock can be set (``BOUSOL_CLOCK`` or :func:`set_clock`): it then starts at the
given instant and keeps running at the real pace, so that time-to-live rules (payment
requests, log-in windows) still elapse. That is how the tests and the demo pick their
"today" — never the real calendar — and how CI runs the date-sensitive tests again on
31 December, 1 January and 29 February. The production config refuses to start with
``BOUSOL_CLOCK`` set (config.py).

This module imports nothing of the ledger, so it never makes an import cycle.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
ENV_VAR = "BOUSOL_CLOCK"

# now() = the real UTC time + _offset. Zero unless the clock was set.
_offset = dt.timedelta(0)


def parse_instant(text: str) -> dt.datetime:
    """``2027-12-31``, ``2027-12-31T23:30`` (Paris time) or an ISO instant with its
    offset, as an aware UTC datetime. A bare date means noon in Boulogne."""
    text = text.strip()
    try:
        if len(text) == 10:
            value = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12, 0))
        else:
            value = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{ENV_VAR}: not a date or an ISO instant: {text!r}") from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return value.astimezone(dt.UTC)


def _real_now() -> dt.datetime:
    return dt.datetime.fromtimestamp(time.time(), dt.UTC)


def set_clock(instant: dt.datetime | str | None) -> None:
    """Make now() read ``instant`` at this moment and run on from there; None puts the
    real time back."""
    global _offset
    if instant is None:
        _offset = dt.timedelta(0)
        return
    if isinstance(instant, str):
        instant = parse_instant(instant)
    if instant.tzinfo is None:
        raise ValueError("set_clock needs an aware datetime")
    _offset = instant - _real_now()


def is_set() -> bool:
    return _offset != dt.timedelta(0)


def now() -> dt.datetime:
    """This instant, aware, in UTC."""
    return _real_now() + _offset


def paris_now() -> dt.datetime:
    return now().astimezone(PARIS)


def paris_today() -> dt.date:
    return paris_now().date()


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


if os.environ.get(ENV_VAR, "").strip():
    set_clock(os.environ[ENV_VAR])
