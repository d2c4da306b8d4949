"""Exchanges waiting for a second person (issue 13, docs/duties.md): the list, one
request's page, approve / refuse with a reason / cancel. Routes of the desk blueprint
(roles bank and admin); the rules are in bousol/ledger/desk/exchange_approvals.py."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from bousol.ledger.desk import exchange_approvals
from bousol.ledger.kernel.errors import DomainError
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.desk.views import TENDER_LABELS, bp
from bousol.web.formatting import fr_money
from bousol.web.forms import flash_refusal, refuse

STATUS_LABELS = {"pending": _l("en attente d'approbation"), "approved": _l("approuvé"),
                 "refused": _l("refusé"), "cancelled": _l("annulé")}
TENDERS = {**TENDER_LABELS, "transfer": _l("Virement")}


class RefuseForm(FlaskForm):
    reason = TextAreaField(_l("Motif du refus"),
                           validators=[Length(max=exchange_approvals.REASON_MAX)])


def rule_words(rule: str) -> str:
    """Why the request waits, with the threshold in force now."""
    with unit_of_work(read_only=True) as uow:
        limits = exchange_approvals.thresholds(uow.conn)
    if rule == "operation":
        return _("plus de %(amount)s en une opération",
                 amount=fr_money(limits.per_operation_cents, "EUR"))
    return _("plus de %(amount)s changés par l'adhérent dans la journée",
             amount=fr_money(limits.per_day_cents, "EUR"))


@bp.app_context_processor
def _pending_exchanges():
    """The count of exchanges waiting, on the desk's and the association's home."""
    if request.endpoint not in ("desk.home", "admin.home"):
        return {}
    with unit_of_work(read_only=True) as uow:
        return {"pending_exchanges": exchange_approvals.pending_count(uow.conn)}


def _labels() -> dict:
    return {"status_labels": STATUS_LABELS, "tenders": TENDERS, "rule_words": rule_words,
            "actor": current_actor()}


@bp.route("/changes-a-approuver")
@role_required("bank", "admin")
def exchange_approvals_list():
    with unit_of_work(read_only=True) as uow:
        waiting = exchange_approvals.pending(uow.conn)
        done = exchange_approvals.recent(uow.conn)
    return render_template("desk/exchange_approvals.html",
                           title=_("Changes en attente d'approbation"), waiting=waiting,
                           done=done, form=FlaskForm(), refuse_form=RefuseForm(formdata=None),
                           **_labels())


def _request_or_404(approval_id: int):
    with unit_of_work(read_only=True) as uow:
        found = exchange_approvals.get(uow.conn, approval_id)
    if found is None:
        abort(404)
    return found


@bp.route("/changes-a-approuver/<int:approval_id>")
@role_required("bank", "admin")
def exchange_approval(approval_id: int):
    found = _request_or_404(approval_id)
    return render_template("desk/exchange_approval.html",
                           title=_("Demande de change n° %(id)s", id=found.id), req=found,
                           form=FlaskForm(), refuse_form=RefuseForm(formdata=None),
                           **_labels())


@bp.route("/changes-a-approuver/<int:approval_id>/approuver", methods=["POST"])
@role_required("bank", "admin")
def exchange_approval_approve(approval_id: int):
    _request_or_404(approval_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        done = exchange_approvals.approve(unit_of_work(), current_actor(), approval_id)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("Change n° %(id)s approuvé : écriture n° %(entry)s. Le guichetier encaisse "
                "les euros et remet le reçu.", id=done.id, entry=done.entry_id), "info")
    return redirect(url_for("desk.exchange_approval", approval_id=approval_id))


@bp.route("/changes-a-approuver/<int:approval_id>/refuser", methods=["POST"])
@role_required("bank", "admin")
def exchange_approval_refuse(approval_id: int):
    found = _request_or_404(approval_id)
    form = RefuseForm()
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
    else:
        try:
            exchange_approvals.refuse(unit_of_work(), current_actor(), approval_id,
                                      form.reason.data)
        except DomainError as error:
            if error.field == "reason":
                refuse(form, error, "reason")
            else:
                flash_refusal(error)
                return redirect(url_for("desk.exchange_approval", approval_id=approval_id))
        else:
            flash(_("Change n° %(id)s refusé : rien n'a été encaissé ni crédité.",
                    id=approval_id), "info")
            return redirect(url_for("desk.exchange_approval", approval_id=approval_id))
    return render_template("desk/exchange_approval.html",
                           title=_("Demande de change n° %(id)s", id=found.id), req=found,
                           form=FlaskForm(), refuse_form=form, **_labels()), 422


@bp.route("/changes-a-approuver/<int:approval_id>/annuler", methods=["POST"])
@role_required("bank", "admin")
def exchange_approval_cancel(approval_id: int):
    _request_or_404(approval_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        exchange_approvals.cancel(unit_of_work(), current_actor(), approval_id)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("Demande de change n° %(id)s annulée : rien n'a été encaissé ni crédité.",
                id=approval_id), "info")
    return redirect(url_for("desk.exchange_approval", approval_id=approval_id))
