"""The composition root of the ledger: the one module that imports every domain.

Each domain registers with the books what they must consult (``books/hooks.py``):
importing them here is what makes a reversal see the notes, the closings, the transfer
files, the refunds and the vouchers, and ``verify`` check the notes and the vouchers.
``create_app`` calls :func:`load`; so does anything that uses the ledger without the app.
"""

from __future__ import annotations

from bousol.ledger.books import hooks


def load() -> None:
    """Import the domains that register with the books (idempotent). The order of the
    imports is the order of their lines in ``verify``'s report."""
    from bousol.ledger.association import (  # noqa: F401
        export_jobs,  # the FEC of a year as a background job (kernel/jobs.py)
        report_figures,  # kept per entry
    )
    from bousol.ledger.books import account_days  # noqa: F401  (the daily figures' invariant)
    from bousol.ledger.ccas import vouchers  # noqa: F401  (voucher kinds, their invariant)
    from bousol.ledger.desk import (  # noqa: F401
        closing,  # a closing's deposit is never reversed
        notes,  # entries that moved notes; the notes' invariant
        payouts,  # transfer files
    )
    from bousol.ledger.merchants import refunds  # noqa: F401  (refunded payments)

    hooks.mark_loaded()
