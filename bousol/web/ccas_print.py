"""Placeholder: routes on the CCAS blueprint (filled in by issue 5's work)."""

from bousol.web.ccas import bp  # noqa: F401
