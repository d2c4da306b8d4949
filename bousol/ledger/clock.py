"""Boulogne-sur-Mer's calendar: membership years, business days, note validity and
transfer dates follow the local day, not UTC. One place, imported by every module that
needs it (it imports nothing of the ledger, so it never makes an import cycle)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def paris_today() -> dt.date:
    return dt.datetime.now(PARIS).date()
