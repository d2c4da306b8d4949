"""The web layer: thin blueprints, one per actor. They parse, check access, call a
service of :mod:`bousol.ledger`, and render."""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, has_request_context
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user, login_required

from bousol.extensions import db
from bousol.ledger.access.parties import actor_for
from bousol.ledger.kernel import replica
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.replica import ReadRouter
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.web import audit_context


def unit_of_work(*, read_only: bool = False, stale_ok: bool = False) -> UnitOfWork:
    """A unit of work on the request's session (Flask-SQLAlchemy closes it at teardown).

    ``stale_ok``: a read that tolerates a few seconds of staleness (the association's
    reports, statements of past months, exports, the public directory) goes to the
    replica while it is healthy (bousol/ledger/kernel/replica.py). Never for what a user
    has just done: their receipt, their balance, their home page read the primary."""
    if stale_ok:
        if not read_only:
            raise ValueError("stale_ok is for read-only units of work")
        return read_router().stale_read(db.session, owns_primary_session=False)
    if not read_only and has_request_context():
        audit_context.note_user()  # its writes are recorded under the request's user
    return UnitOfWork(db.session, owns_session=False, read_only=read_only)


def read_router() -> ReadRouter:
    return current_app.extensions["bousol.reads"]


def stale_reads_status() -> str:
    """Where the stale-tolerant reads go now, in a sentence (the admin's home page)."""
    health = read_router().health()
    if health.state == replica.OK:
        return _("Lectures différées : réplique (retard %(lag)s s)",
                 lag=format_decimal(health.lag_seconds or 0.0, "0.0"))
    if health.state == replica.LAGGING:
        if health.lag_seconds is None:
            return _("Lectures différées : réplique en retard (rien de rejoué depuis son "
                     "démarrage) : lectures sur le primaire")
        return _("Lectures différées : réplique en retard de %(lag)s s (limite %(max)s s) : "
                 "lectures sur le primaire", lag=format_decimal(health.lag_seconds, "0.0"),
                 max=format_decimal(health.max_lag_seconds, "0.#"))
    if health.state == replica.UNREACHABLE:
        return _("Lectures différées : réplique injoignable : lectures sur le primaire")
    if health.state == replica.NOT_A_REPLICA:
        return _("Lectures différées : DATABASE_REPLICA_URL ne désigne pas une réplique : "
                 "lectures sur le primaire")
    return _("Lectures différées : sur le primaire (pas de réplique configurée)")


def form_status(error: DomainError) -> int:
    """The status of a form sent back with the ledger's refusal: the error's own 4xx,
    but 422 for "not found" (the page exists; what was typed names nobody)."""
    status = error.http_status
    return status if 400 <= status < 500 and status != 404 else 422


def seen_cents(text: str | None) -> int | None:
    """The amount in cents a page showed and its form carries back in a hidden field
    (blank: none shown); anything but plain digits is a forged form: 400."""
    text = (text or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        abort(400)
    return int(text)


def public_url(path: str) -> str:
    """An absolute link for an e-mail or a printed sheet: the configured site address
    (production requires it), never a request's forgeable Host header; development and
    tests fall back on the request's host."""
    from flask import current_app, request

    base = current_app.config.get("PUBLIC_URL") or request.url_root.rstrip("/")
    return base + path


def current_actor() -> Actor:
    return actor_for(current_user)


def role_required(*roles: str):
    """Log in first; then only these roles (others get 403)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
