"""The audit trail, searched by the association (issue 7): who did what, when, from
where; and the proof that no record was changed or removed."""

from __future__ import annotations

import datetime as dt

from flask import render_template, request
from flask_babel import gettext as _

from bousol.ledger import audit, statements
from bousol.ledger.errors import InvalidDate
from bousol.web import role_required, unit_of_work
from bousol.web.admin import bp

PAGE_SIZE = 50


def _day(value: str | None, errors: list[str], label: str) -> dt.date | None:
    """A typed day (``statements.parse_date``: jj/mm/aaaa or ISO, years 2000–2999)."""
    try:
        return statements.parse_date(value)
    except InvalidDate:
        errors.append(_("%(label)s : date invalide (jj/mm/aaaa).", label=label))
        return None


@bp.route("/audit")
@role_required("admin")
def audit_trail():
    args = request.args
    errors: list[str] = []
    text = (args.get("q") or "").strip()[:100]
    username = (args.get("qui") or "").strip()[:80]
    address = (args.get("adresse") or "").strip()[:64]
    since = _day(args.get("du"), errors, _("Du"))
    until = _day(args.get("au"), errors, _("Au"))
    if since and until and until < since:
        errors.append(_("La date de fin précède la date de début."))
    page = args.get("page", "1")
    page_number = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
    check = None
    with unit_of_work(read_only=True) as uow:
        found = audit.Page([], 0)
        if not errors:
            start, end = statements.paris_bounds(since, until)
            found = audit.search(
                uow.conn, text=text or None, username=username or None,
                address=address or None, since=start, until=end,
                limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE)
        if args.get("verifier"):
            check = audit.verify_chain(uow.conn)
    pages = max(1, -(-found.total // PAGE_SIZE))
    return render_template(
        "admin/audit.html", title=_("Journal d'audit"), records=found.rows, total=found.total,
        describe=audit.describe, errors=errors, check=check, page=page_number, pages=pages,
        query={"q": text, "qui": username, "adresse": address, "du": args.get("du") or "",
               "au": args.get("au") or ""},
    ), 422 if errors else 200
