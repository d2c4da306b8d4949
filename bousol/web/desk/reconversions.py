"""The prestataires' reconversion requests at the desk: execute (the reconversion and
its slip) or refuse with a reason. Routes of the desk blueprint (roles bank and admin)."""

from __future__ import annotations

import dataclasses

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bousol.ledger.books import queries
from bousol.ledger.desk import reconversion_requests as requests_
from bousol.ledger.kernel.errors import DomainError, NotFound
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.desk.views import bp
from bousol.web.formatting import fr_money
from bousol.web.merchant.views import REQUEST_STATUS_LABELS

REASON_FIELD = "motif"


def _page(status: int = 200, *, refusal: str | None = None, refused_id: int | None = None,
          reason_error: str | None = None, reason: str = ""):
    with unit_of_work(read_only=True) as uow:
        waiting = requests_.pending(uow.conn)
        closed = requests_.recently_closed(uow.conn)
    return render_template(
        "desk/reconversion_requests.html", title=_("Demandes de reconversion"),
        waiting=waiting, closed=closed, status_labels=REQUEST_STATUS_LABELS,
        refusal=refusal, refused_id=refused_id, reason_error=reason_error, reason=reason,
        reason_max=requests_.REASON_MAX,
    ), status


@bp.route("/reconversions")
@role_required("bank", "admin")
def reconversion_requests():
    return _page()


@bp.route("/reconversions/<int:request_id>/executer", methods=["POST"])
@role_required("bank", "admin")
def execute_reconversion_request(request_id: int):
    try:
        done = requests_.execute(unit_of_work(), current_actor(), request_id)
    except NotFound:
        abort(404)
    except DomainError as error:
        return _page(error.http_status, refusal=_(
            "Demande n° %(id)s non exécutée : %(why)s", id=request_id, why=error.message))
    flash(_("Demande n° %(id)s exécutée : %(amount)s reconvertis.", id=request_id,
            amount=fr_money(done.bousol_cents, "BSOL")), "info")
    return redirect(url_for("desk.reconversion_request_slip", request_id=request_id))


@bp.route("/reconversions/<int:request_id>/refuser", methods=["POST"])
@role_required("bank", "admin")
def refuse_reconversion_request(request_id: int):
    reason = request.form.get(REASON_FIELD, "")
    try:
        requests_.refuse(unit_of_work(), current_actor(), request_id, reason)
    except NotFound:
        abort(404)
    except DomainError as error:
        if error.field == "reason":  # no form here: the page shows it by the reason
            return _page(422, refused_id=request_id, reason_error=error.message,
                         reason=reason[:requests_.REASON_MAX + 50])
        return _page(error.http_status, refusal=_(
            "Demande n° %(id)s non refusée : %(why)s", id=request_id, why=error.message))
    flash(_("Demande n° %(id)s refusée.", id=request_id), "info")
    return redirect(url_for("desk.reconversion_requests"))


@bp.route("/reconversions/<int:request_id>/bordereau")
@role_required("bank", "admin")
def reconversion_request_slip(request_id: int):
    """The reconversion slip of an executed request (the desk's slip, its clerk being
    the one who executed the request)."""
    with unit_of_work(read_only=True) as uow:
        row = requests_.get(uow.conn, request_id)
        slip = (queries.reconversion_receipt(uow.conn, row.entry_id)
                if row is not None and row.entry_id else None)
    if slip is None:
        abort(404)
    slip = dataclasses.replace(slip, clerk=slip.clerk or row.closed_by)
    return render_template("desk/reconversion_receipt.html",
                           title=_("Bordereau de reconversion"), receipt=slip)
