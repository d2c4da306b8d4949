"""Input that no page may see: ids beyond what the database stores, NUL characters.

Both would otherwise reach the database and come back as a 500 (SQLite: OverflowError
past 2⁶³; PostgreSQL: "integer out of range", and NUL is not allowed in its text).
"""

from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

# Row ids are 32-bit on PostgreSQL (entries are 64-bit, but 2 billion entries is far off):
# a larger number in a URL names nothing, so the route does not match: a 404.
ID_MAX = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", ID_MAX)
        super().__init__(map, *args, **kwargs)


def _has_nul() -> bool:
    if "\x00" in request.path or any("\x00" in v for _k, v in request.args.items(multi=True)):
        return True
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        return any("\x00" in value for _k, value in request.form.items(multi=True))
    return False


def register(app: Flask) -> None:
    """Call before the blueprints are registered (the converter is read per route)."""
    app.url_map.converters["int"] = BoundedIntConverter

    @app.before_request
    def refuse_nul():
        if _has_nul():
            abort(400)
