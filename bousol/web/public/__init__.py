"""The pages of anyone, before logging in (/): one blueprint, ``bp`` (defined in
``views``), whose routes the modules below join by importing it."""

from bousol.web.public import first_password  # noqa: F401  (its routes join bp)
from bousol.web.public.views import bp

__all__ = ["bp"]
