"""The pages of the association's administration (/admin): one blueprint, ``bp`` (defined
in ``views``), whose routes the modules below join by importing it."""

from bousol.web.admin import (
    approval,  # noqa: F401  (its routes join bp)
    audit,  # noqa: F401  (its routes join bp)
    fec,  # noqa: F401  (its routes join bp)
    members,  # noqa: F401  (its routes join bp)
    phases,  # noqa: F401  (its routes join bp)
    reports,  # noqa: F401  (its routes join bp)
    settings,  # noqa: F401  (its routes join bp)
    tokens,  # noqa: F401  (its routes join bp)
)
from bousol.web.admin.views import bp

__all__ = ["bp"]
