"""The prestataire's space: balance, euros owed, today's takings, the history with its
filters and its CSV export for the accountant, receipts, reconversion requests.
(Payment requests and refunds are bousol/web/merchant/payments.py.)"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from bousol.ledger.books import operations, queries, statements
from bousol.ledger.desk import reconversion_requests as requests_
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError, NotFound
from bousol.web import current_actor, role_required, unit_of_work, views
from bousol.web.forms import page_status, refuse

bp = Blueprint("merchant", __name__, url_prefix="/prestataire")

REQUEST_STATUS_LABELS = {
    "requested": _l("En attente"),
    "executed": _l("Exécutée"),
    "cancelled": _l("Annulée"),
    "refused": _l("Refusée"),
}


@bp.route("/")
@role_required("prestataire")
def home():
    return views.space_home(
        "merchant", "merchant/home.html", _("Mon commerce"),
        takings=lambda conn, party_id: statements.takings_today(conn, party_id),
        waiting=lambda conn, party_id: [
            r for r in requests_.for_party(conn, party_id, limit=20)
            if r.status == "requested"],
    )


@bp.route("/historique")
@role_required("prestataire")
def history():
    return views.history("merchant", _("Historique de mes opérations"),
                         csv_endpoint="merchant.history_csv")


@bp.route("/historique.csv")
@role_required("prestataire")
def history_csv():
    return views.history_csv("merchant", _("Historique de mes opérations"),
                             "merchant.history")


@bp.route("/recu/<int:entry_id>")
@role_required("prestataire")
def receipt(entry_id: int):
    return views.receipt("merchant", entry_id)


# ---------------------------------------------------------------- reconversion requests


class ReconversionRequestForm(FlaskForm):
    bousols = StringField(_l("Bou'Sols à reconvertir"),
                          validators=[DataRequired(_l("Indiquez un montant.")),
                                      Length(max=20)])
    memo = StringField(_l("Commentaire pour la banque (facultatif)"),
                       validators=[Length(max=requests_.MEMO_MAX)])


class CancelForm(FlaskForm):
    """Only the CSRF token: the request's id is in the URL."""


def _requests_page(form: ReconversionRequestForm, status: int = 200,
                   refusal: str | None = None):
    party = current_user.party
    with unit_of_work(read_only=True) as uow:
        balances = queries.party_balances(uow.conn, party.id)
        rows = requests_.for_party(uow.conn, party.id)
        fee_bp = operations.reconversion_fee_bp(uow.conn)
    return render_template(
        "merchant/reconversions.html", title=_("Mes demandes de reconversion"),
        party=party, balances=balances, rows=rows, form=form, cancel_form=CancelForm(),
        fee_bp=fee_bp, status_labels=REQUEST_STATUS_LABELS, refusal=refusal,
        space="merchant",
    ), status


@bp.route("/reconversions", methods=["GET", "POST"])
@role_required("prestataire")
def reconversions():
    form = ReconversionRequestForm()
    if not form.validate_on_submit():
        return _requests_page(form, page_status(form))
    try:
        made = requests_.request(unit_of_work(), current_actor(), form.bousols.data,
                                 memo=form.memo.data or None)
    except DomainError as error:  # by the memo if it is about the memo, else the amount
        refuse(form, error, "bousols")
        return _requests_page(form, 422)
    flash(_("Demande n° %(id)s envoyée à la banque : %(amount)s à reconvertir.",
            id=made.request_id, amount=money.format_fr(made.bousol_cents, "B")), "info")
    return redirect(url_for("merchant.reconversions"))


@bp.route("/reconversions/<int:request_id>/annuler", methods=["POST"])
@role_required("prestataire")
def cancel_reconversion(request_id: int):
    form = CancelForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        requests_.cancel(unit_of_work(), current_actor(), request_id)
    except NotFound:
        abort(404)
    except DomainError as error:
        return _requests_page(ReconversionRequestForm(formdata=None), error.http_status,
                              refusal=error.message)
    flash(_("Demande n° %(id)s annulée.", id=request_id), "info")
    return redirect(url_for("merchant.reconversions"))
