"""Placeholder: voucher redemption at the till (issue 5)."""

from bousol.web.merchant import bp  # noqa: F401
