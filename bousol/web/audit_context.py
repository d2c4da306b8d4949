"""Who and from where, for the audit trail (bousol/ledger/kernel/audit.py): each request sets
the context its transactions are recorded under; the user joins it once known."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import current_user

from bousol.ledger.kernel import audit


def register(app: Flask) -> None:
    @app.before_request
    def _audit_context():
        # The route's rule, not the path: a path can carry a bearer secret (a pay link's
        # token, a voucher's code) or an erased beneficiary's reference; the trail keeps
        # forever what it is given.
        rule = request.url_rule.rule if request.url_rule is not None else "?"
        context = audit.Context(
            user_id=None, username="anonyme", address=(request.remote_addr or "inconnue")[:64],
            action=f"{request.method} {rule}"[:120])
        g.audit_token = audit.set_context(context)
        if request.endpoint != "static":
            note_user()  # the session's user (one lookup most views make anyway)

    @app.teardown_request
    def _audit_context_end(_exc):
        token = g.pop("audit_token", None)
        if token is not None:
            try:
                audit.reset_context(token)
            except ValueError:  # set in another context (a streamed response): let it be
                pass


def note_user() -> None:
    """The request's user, once authenticated (web session or API token)."""
    api_user = g.get("api_user")
    if api_user is not None:
        audit.set_user(api_user.user_id, api_user.username)
    elif current_user.is_authenticated:
        audit.set_user(current_user.id, current_user.username)
