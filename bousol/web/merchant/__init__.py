"""The pages of the prestataire's space and till (/prestataire): one blueprint, ``bp``
(defined in ``views``), whose routes the modules below join by importing it."""

from bousol.web.merchant import (
    payments,  # noqa: F401  (its routes join bp)
    profile,  # noqa: F401  (its routes join bp)
    vouchers,  # noqa: F401  (its routes join bp)
)
from bousol.web.merchant.views import bp

__all__ = ["bp"]
