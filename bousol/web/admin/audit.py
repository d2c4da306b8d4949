"""The audit trail, searched by the association (issue 7): who did what, when, from
where; and the proof that no record was changed or removed."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from flask import render_template, request
from flask_babel import gettext as _

from bousol.ledger.access import parties
from bousol.ledger.books import statements
from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel import audit
from bousol.ledger.kernel.errors import InvalidDate
from bousol.web import audit_view, role_required, unit_of_work
from bousol.web.admin.views import bp

PAGE_SIZE = 50
# The routes where a soliste spends its aid (docs/vouchers.md, issue 13).
AID_BENEFICIARY_ACTIONS = frozenset({"POST /payer/bons"})


@dataclass(frozen=True)
class ShownRecord:
    """A record as the page shows it: an aid beneficiary's own act names no one."""

    seq: int
    at: dt.datetime
    user_id: int | None
    username: str
    address: str
    action: str
    details: str
    hash: str
    aid_beneficiary: bool


def _hide_aid_beneficiaries(conn, rows) -> list[ShownRecord]:
    """Outside the CCAS, an aid redemption shows "bénéficiaire CCAS", never the soliste
    nor where it connected from: records of the earmarked spending route, and any
    voucher redemption a soliste made (records older than the pseudonymous context)."""
    solistes = parties.solistes_among(conn, {r.user_id for r in rows if r.user_id is not None})
    shown = []
    for r in rows:
        hide = r.action in AID_BENEFICIARY_ACTIONS or (
            r.user_id in solistes and '"voucher_redemptions"' in (r.details or ""))
        shown.append(ShownRecord(
            r.seq, r.at, None if hide else r.user_id,
            vouchers.AID_BENEFICIARY if hide else r.username, "—" if hide else r.address,
            r.action, _without_people(r.details) if hide else r.details, r.hash, hide))
    return shown


# Kept values that would name the beneficiary: its login attempt's username and user
# id, its idempotency key's scope ("user:12"), a party id.
_PEOPLE_COLUMNS = ("username", "user_id", "scope", "party_id")


def _without_people(details: str) -> str:
    try:
        data = json.loads(details)
        for change in data.get("changes", []):
            values = change.get("values", {})
            for column in _PEOPLE_COLUMNS:
                if column in values:
                    values[column] = ["—"]
    except (ValueError, AttributeError, TypeError):
        return "{}"
    return json.dumps(data, ensure_ascii=False)


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
    before = args.get("avant", "")
    before_seq = int(before) if before.isdigit() and 0 < int(before) <= 2**62 else None
    check = None
    with unit_of_work(read_only=True) as uow:
        found = audit.Page([], 0)
        if not errors:
            start, end = statements.paris_bounds(since, until)
            found = audit.search(
                uow.conn, text=text or None, username=username or None,
                address=address or None, since=start, until=end,
                limit=PAGE_SIZE, before_seq=before_seq)
        if args.get("verifier"):
            check = audit.verify_chain(uow.conn)
        records = _hide_aid_beneficiaries(uow.conn, found.rows)
    if username or address or text:  # "who is marie?" must not find her aid: left out
        records = [r for r in records if not r.aid_beneficiary]
    return render_template(
        "admin/audit.html", title=_("Journal d'audit"), records=records, total=found.total,
        describe=audit_view.describe, technical=audit.describe,
        action_label=audit_view.action_label, errors=errors, check=check,
        older=found.next_before, newest=before_seq is None,
        query={"q": text, "qui": username, "adresse": address, "du": args.get("du") or "",
               "au": args.get("au") or ""},
    ), 422 if errors else 200
