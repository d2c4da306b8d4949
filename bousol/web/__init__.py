"""The web layer: thin blueprints, one per actor. They parse, check access, call a
service of :mod:`bousol.ledger`, and render."""

from __future__ import annotations

from functools import wraps

from flask import abort, has_request_context
from flask_login import current_user, login_required

from bousol.extensions import db
from bousol.ledger.access.parties import actor_for
from bousol.ledger.kernel.actors import Actor
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.web import audit_context


def unit_of_work(*, read_only: bool = False) -> UnitOfWork:
    """A unit of work on the request's session (Flask-SQLAlchemy closes it at teardown)."""
    if not read_only and has_request_context():
        audit_context.note_user()  # its writes are recorded under the request's user
    return UnitOfWork(db.session, owns_session=False, read_only=read_only)


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
