"""The association's approval (agrément) of prestataires: the applications by status,
waiting ones first; one application with its decision history, and the decisions the
state machine allows from its status. Routes of the admin blueprint (role admin)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from bousol.ledger.kernel import siret
from bousol.ledger.kernel.errors import DomainError, NotAPrestataire
from bousol.ledger.merchants import approval
from bousol.ledger.models import Role
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.formatting import elides
from bousol.web.forms import flash_refusal, refuse
from bousol.web.pages import numbered

# The URL's word for each decision the association takes.
ACTIONS = {
    "approuver": approval.Action.APPROVE,
    "refuser": approval.Action.REFUSE,
    "suspendre": approval.Action.SUSPEND,
    "retablir": approval.Action.REINSTATE,
}


class RefuseForm(FlaskForm):
    refuse_reason = TextAreaField(_l("Motif du refus (le demandeur le verra)"),
                                  validators=[Length(max=approval.REASON_MAX)])


class SuspendForm(FlaskForm):
    suspend_reason = TextAreaField(_l("Motif de la suspension (le prestataire le verra)"),
                                   validators=[Length(max=approval.REASON_MAX)])


GROUP_PAGE = 100


@bp.route("/prestataires")
@role_required("admin")
def approvals():
    with unit_of_work(read_only=True) as uow:
        rows = approval.list_by_status(uow.conn)
    # Each status shows GROUP_PAGE rows a page (``page_<status>``): the approved are the
    # territory's thousands of businesses; the page renders only what it shows.
    groups = [(status, numbered([r for r in rows if r.status == status], GROUP_PAGE,
                                f"page_{status.value}"))
              for status in approval.STATUS_ORDER]
    return render_template(
        "admin/prestataires.html", title=_("Agrément des prestataires"), groups=groups,
        status_labels=approval.STATUS_LABELS,
        waiting=sum(1 for r in rows if r.status == approval.Status.SUBMITTED))



def _detail(code: str, refuse_form: RefuseForm, suspend_form: SuspendForm,
            status: int = 200):
    with unit_of_work(read_only=True) as uow:
        found = approval.application(uow.conn, code)
        if found is None:
            abort(404)
        history = approval.decisions(uow.conn, found.party_id)
    allowed = approval.allowed_actions(found.status, Role.ADMIN)
    return render_template(
        "admin/prestataire.html",
        title=(_("Demande d'agrément d'%(name)s", name=found.name) if elides(found.name)
               else _("Demande d'agrément de %(name)s", name=found.name)),
        application=found, history=history, allowed=allowed,
        status_labels=approval.STATUS_LABELS, action_labels=approval.ACTION_LABELS,
        legal_forms=approval.LEGAL_FORMS, siret_display=siret.display,
        form=FlaskForm(), refuse_form=refuse_form, suspend_form=suspend_form,
    ), status


@bp.route("/prestataires/<code>")
@role_required("admin")
def approval_detail(code: str):
    return _detail(code, RefuseForm(formdata=None), SuspendForm(formdata=None))


@bp.route("/prestataires/<code>/<any(approuver, refuser, suspendre, retablir):action>",
          methods=["POST"])
@role_required("admin")
def approval_decide(code: str, action: str):
    step = ACTIONS[action]
    refuse_form = RefuseForm() if step == approval.Action.REFUSE else RefuseForm(formdata=None)
    suspend_form = (SuspendForm() if step == approval.Action.SUSPEND
                    else SuspendForm(formdata=None))
    form = {approval.Action.REFUSE: refuse_form,
            approval.Action.SUSPEND: suspend_form}.get(step, FlaskForm())
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            abort(400)
        return _detail(code, refuse_form, suspend_form, 422)
    reason_field = getattr(form, "refuse_reason", None) or getattr(form, "suspend_reason", None)
    try:
        done = approval.decide(unit_of_work(), current_actor(), code, step,
                               reason_field.data if reason_field is not None else None)
    except DomainError as error:
        if error.http_status == 404 or isinstance(error, NotAPrestataire):
            abort(404)
        if error.field == "reason" and reason_field is not None:
            status = refuse(form, error, fields={"reason": reason_field.name})
            return _detail(code, refuse_form, suspend_form, status)
        flash_refusal(error)
        return redirect(url_for("admin.approval_detail", code=code))
    flash(_("%(step)s : %(code)s est maintenant « %(status)s ».",
            step=_(approval.ACTION_LABELS[step]), code=done.party_code,
            status=_(approval.STATUS_LABELS[approval.Status(done.to_status)])), "info")
    return redirect(url_for("admin.approval_detail", code=code))
