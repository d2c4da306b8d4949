"""Boulogne-sur-Mer's calendar: membership years, business days, note validity and
transfer dates follow the local day, not UTC. One place, imported by every module that
needs it (it imports nothing of the ledger, so it never makes an import cycle)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_today() -> dt.date:
    return dt.datetime.now(PARIS).date()


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
