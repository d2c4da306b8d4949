"""The pages of the CCAS's social workers (/ccas): one blueprint, ``bp`` (defined in
``views``), whose routes the modules below join by importing it."""

from bousol.web.ccas import (
    printing,  # noqa: F401  (its routes join bp)
    reports,  # noqa: F401  (its routes join bp)
)
from bousol.web.ccas.views import bp

__all__ = ["bp"]
