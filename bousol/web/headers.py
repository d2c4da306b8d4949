"""Security headers on every response: everything is served from our own origin
(no CDN), nothing may frame our pages, no MIME sniffing, no referrer to other sites.

Production also sends ``Strict-Transport-Security`` (config ``STRICT_TRANSPORT_SECURITY``:
browsers then refuse plain HTTP for the site, so the session cookie never travels in
clear). A signed-in user's responses are ``Cache-Control: no-store`` (balances,
names, receipts must not stay in a shared computer's cache or come back with the
Back button after the log-out), unless the view chose its own caching (the QR code
images: private, five minutes); the static files are cached as usual.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_login import current_user

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
NO_STORE = "no-store"


def _signed_in() -> bool:
    try:
        return bool(current_user.is_authenticated)
    except Exception:  # the database is down: the error page goes out anyway
        return False


def register(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        hsts = app.config.get("STRICT_TRANSPORT_SECURITY")
        if hsts:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if (request.endpoint != "static" and "Cache-Control" not in response.headers
                and (request.authorization is not None or _signed_in())):
            response.headers["Cache-Control"] = NO_STORE
        return response
