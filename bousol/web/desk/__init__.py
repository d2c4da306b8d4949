"""The pages of the exchange desk (/comptoir): one blueprint, ``bp`` (defined in
``views``), whose routes the modules below join by importing it."""

from bousol.web.desk import (
    approvals,  # noqa: F401  (its routes join bp)
    notes,  # noqa: F401  (its routes join bp)
    reconversions,  # noqa: F401  (its routes join bp)
)
from bousol.web.desk.views import bp

__all__ = ["bp"]
