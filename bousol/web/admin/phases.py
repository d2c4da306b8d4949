"""The association opens the phases (B2B, CCAS): dated, with the decision behind it."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from bousol.ledger.books import phases, rules
from bousol.ledger.kernel.errors import DomainError
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.forms import page_status, refuse


class SwitchForm(FlaskForm):
    phase = HiddenField(validators=[DataRequired()])
    on = HiddenField(validators=[DataRequired()])
    reason = StringField(_l("Décision (obligatoire)"), validators=[DataRequired(), Length(max=500)])


@bp.route("/phases", methods=["GET", "POST"])
@role_required("admin")
def phases_page():
    form = SwitchForm()
    status = 200
    if form.validate_on_submit():
        try:
            phases.switch(unit_of_work(), current_actor(), phase=form.phase.data,
                          on=form.on.data == "on", reason=form.reason.data)
            flash(_("Phase enregistrée."), "info")
            return redirect(url_for("admin.phases_page"))
        except DomainError as error:
            status = refuse(form, error, "reason")
    with unit_of_work(read_only=True) as uow:
        states = phases.states(uow.conn)
    return render_template("admin/phases.html", states=states, form=form,
                           labels=rules.PHASE_LABELS, title=_l("Phases du Bou'Sol")), \
        page_status(form, status)
