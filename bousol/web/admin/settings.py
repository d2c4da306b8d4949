"""The association's settings and the collective's seats (issue 7). Routes of the admin
blueprint (role admin): ``/admin/reglages`` lists every setting, its current value and
its history (who, when, why, which decision of the collective); ``/admin/collectif``
seats and unseats the members of the management collective."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bousol.ledger.association import decisions
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import COLLEGE_LABELS, College
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.collective import setting_label
from bousol.web.forms import flash_refusal, refuse


@bp.route("/reglages")
@role_required("admin")
def settings_page():
    with unit_of_work(read_only=True) as uow:
        states = decisions.settings_overview(uow.conn)
    return render_template("admin/settings.html", title=_("Réglages de l'association"),
                           states=states, setting_label=setting_label)


class SeatForm(FlaskForm):
    # Checked here too (not only by the ledger): the form's message follows the language.
    username = StringField(_l("Identifiant de la personne"), validators=[
        DataRequired(message=_l("Identifiant : obligatoire.")), Length(max=80)])
    college = SelectField(_l("Collège"), validate_choice=False, choices=[
        SelectChoice("", _l("Selon son compte (soliste, prestataire, acteur local)")),
        *(SelectChoice(c.value, _l(label)) for c, label in COLLEGE_LABELS.items())])


class UnseatForm(FlaskForm):
    seat_username = HiddenField()


def _seats_page(form: SeatForm, status: int = 200):
    with unit_of_work(read_only=True) as uow:
        seats = decisions.collective(uow.conn)
    groups = [(college, [s for s in seats if s.college == college.value])
              for college in College]
    return render_template("admin/collective.html", title=_("Membres du collectif de gestion"),
                           form=form, unseat_form=UnseatForm(formdata=None), groups=groups,
                           college_labels=COLLEGE_LABELS, total=len(seats)), status


@bp.route("/collectif", methods=["GET", "POST"])
@role_required("admin")
def collective_seats():
    form = SeatForm()
    if not form.is_submitted():
        return _seats_page(form)
    if not form.validate():
        if "csrf_token" in form.errors:
            abort(400)
        return _seats_page(form, 422)
    try:
        made = decisions.add_member(unit_of_work(), current_actor(), form.username.data,
                                    form.college.data or None)
    except DomainError as error:
        return _seats_page(form, refuse(form, error, "username"))
    flash(_("%(username)s siège au collectif (collège « %(college)s »).", username=made.username,
            college=_(COLLEGE_LABELS[College(made.college)])), "info")
    return redirect(url_for("admin.collective_seats"))


@bp.route("/collectif/retirer", methods=["POST"])
@role_required("admin")
def collective_unseat():
    form = UnseatForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        decisions.remove_member(unit_of_work(), current_actor(), form.seat_username.data)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("%(username)s ne siège plus au collectif.", username=form.seat_username.data),
              "info")
    return redirect(url_for("admin.collective_seats"))
