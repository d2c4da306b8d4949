"""Every user's own account page: the API tokens it holds (see and revoke them)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import DataRequired, NumberRange

from bousol.ledger import api_tokens
from bousol.ledger.errors import DomainError
from bousol.web import current_actor, unit_of_work

bp = Blueprint("account", __name__, url_prefix="/compte")


class RevokeForm(FlaskForm):
    token_id = IntegerField(validators=[DataRequired(), NumberRange(1, 2**31 - 1)])


@bp.route("/jetons", methods=["GET", "POST"])
@login_required
def tokens():
    form = RevokeForm()
    status = 200
    if form.validate_on_submit():
        try:
            api_tokens.revoke(unit_of_work(), current_actor(), form.token_id.data)
            flash(_("Jeton révoqué : il ne donne plus accès à l'API."), "info")
            return redirect(url_for("account.tokens"))
        except DomainError as error:
            form.token_id.errors.append(error.message)
    if form.errors:
        status = 422
    with unit_of_work(read_only=True) as uow:
        active = api_tokens.active_tokens(uow.conn, current_user.id)
    return render_template("account/tokens.html", tokens=active, form=form,
                           title=_l("Mes jetons d'accès à l'API"),
                           revoke_url=url_for("account.tokens"), owner=None), status
