"""The prestataire's own approval (agrément) and public page: its status and every
decision (who, when, why), its draft to complete and send, a refused application to
correct; its opening hours and description for the directory. Routes of the merchant
blueprint (same actor). An applicant not yet approved logs in with role prestataire
too: these pages are its way in."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length

from bousol.ledger.desk import iban_changes
from bousol.ledger.kernel import iban, siret
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.merchants import approval
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.forms import flash_refusal, page_status, refuse
from bousol.web.merchant.views import bp
from bousol.web.public.views import ApplicationForm, attach_errors, checked, wants_submit


class ProfileForm(FlaskForm):
    opening_hours = TextAreaField(_l("Horaires d'ouverture"),
                                  validators=[Length(max=approval.OPENING_HOURS_MAX)])
    description = TextAreaField(_l("Présentation de l'entreprise ou de la structure"),
                                validators=[Length(max=approval.DESCRIPTION_MAX)])


def _own_application() -> approval.Application:
    with unit_of_work(read_only=True) as uow:
        found = approval.application(uow.conn, current_user.party_id)
    if found is None:
        abort(404)
    return found


def _form_data(found: approval.Application) -> dict[str, object]:
    return {
        "name": found.name, "legal_form": found.legal_form or "",
        "siret": siret.display(found.siret),
        "address": found.address, "commune": found.commune, "filiere": found.filiere or "",
        "contact_name": found.contact_name, "phone": found.phone, "email": found.email,
        "iban": iban.display(found.iban), "bic": found.bic,
        "charter": found.charter_accepted_at is not None,
    }


def _page(found: approval.Application, form: ApplicationForm | None, status: int = 200):
    with unit_of_work(read_only=True) as uow:
        history = approval.decisions(uow.conn, found.party_id)
    labels = _field_labels()
    refusal = next((d for d in reversed(history)
                    if d.action in (approval.Action.REFUSE, approval.Action.SUSPEND)), None)
    return render_template(
        "merchant/agrement.html", title=_("Mon agrément"), application=found, form=form,
        history=history, refusal=refusal, status_labels=approval.STATUS_LABELS,
        action_labels=approval.ACTION_LABELS,
        missing=[labels[name] for name in found.missing] if form else [],
        amend_form=FlaskForm(),
    ), status


def _field_labels() -> dict[str, str]:
    form = ApplicationForm(formdata=None)
    labels = {name: getattr(form, name).label.text for name in approval.FIELD_LABELS
              if name != "charter_accepted"}
    labels["charter_accepted"] = _("Acceptation de la charte")
    return labels


@bp.route("/agrement", methods=["GET", "POST"])
@role_required("prestataire")
def application():
    found = _own_application()
    if found.status != approval.Status.DRAFT:
        if request.method != "POST":
            return _page(found, None)
        flash(_("Votre demande n'est plus un brouillon : elle ne se modifie pas."), "error")
        return redirect(url_for("merchant.application"))
    form = ApplicationForm(data=_form_data(found))
    if checked(form):
        sending = wants_submit()
        try:
            approval.update_application(unit_of_work(), current_actor(), submit=sending,
                                        **form.application())
        except DomainError as error:
            attach_errors(form, error)
        else:
            flash(_("Demande d'agrément envoyée : l'association l'examine et vous répondra "
                    "ici.") if sending else _("Brouillon enregistré."), "info")
            return redirect(url_for("merchant.application"))
    return _page(found, form, page_status(form))


@bp.route("/agrement/corriger", methods=["POST"])
@role_required("prestataire")
def amend():
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        approval.amend(unit_of_work(), current_actor(), current_actor().party_code)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("Votre demande est de nouveau un brouillon : corrigez-la, puis envoyez-la."),
              "info")
    return redirect(url_for("merchant.application"))


@bp.route("/fiche", methods=["GET", "POST"])
@role_required("prestataire")
def profile():
    found = _own_application()
    form = ProfileForm(data={"opening_hours": found.opening_hours,
                             "description": found.description})
    if form.validate_on_submit():
        try:
            approval.update_public_profile(
                unit_of_work(), current_actor(), opening_hours=form.opening_hours.data,
                description=form.description.data)
        except DomainError as error:
            refuse(form, error, "description")
        else:
            flash(_("Fiche enregistrée."), "info")
            return redirect(url_for("merchant.profile"))
    return render_template(
        "merchant/fiche.html", title=_("Ma fiche dans l'annuaire"), form=form,
        application=found, approved=found.status == approval.Status.APPROVED,
    ), page_status(form)


# ---------------------------------------------------------------- IBAN changes (issue 13)


@bp.route("/banque")
@role_required("prestataire")
def bank_details():
    """The IBAN in force and any change the desk typed, to confirm or refuse here."""
    with unit_of_work(read_only=True) as uow:
        found = approval.application(uow.conn, current_user.party_id)
        if found is None:
            abort(404)
        waiting = iban_changes.waiting(uow.conn, current_user.party_id)
        past = [c for c in iban_changes.history(uow.conn, current_user.party_id)
                if c.status != iban_changes.ChangeStatus.REQUESTED]
    return render_template("merchant/bank.html", title=_("Coordonnées bancaires"),
                           application=found, waiting=waiting, past=past,
                           form=FlaskForm())


@bp.route("/banque/<int:change_id>/<any(confirmer, refuser):action>", methods=["POST"])
@role_required("prestataire")
def bank_details_decide(change_id: int, action: str):
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        if action == "confirmer":
            done = iban_changes.confirm(unit_of_work(), current_actor(), change_id)
            flash(_("Nouvel IBAN confirmé : %(iban)s. Les prochains virements y seront "
                    "faits.", iban=done.iban_display), "info")
        else:
            iban_changes.cancel(unit_of_work(), current_actor(), change_id)
            flash(_("Changement d'IBAN refusé : l'IBAN en vigueur reste inchangé. "
                    "Prévenez l'association si vous ne l'aviez pas demandé."), "info")
    except DomainError as error:
        flash_refusal(error, not_found_404=True)
    return redirect(url_for("merchant.bank_details"))
