"""Every user's own account pages: the API tokens it holds (see and revoke them), and
changing the password (which ends every other session)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange

from bousol.extensions import db
from bousol.ledger.access import api_tokens, parties
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import User
from bousol.web import current_actor, unit_of_work
from bousol.web.auth import client_address, start_session
from bousol.web.forms import page_status, refuse

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
            status = refuse(form, error, "token_id")
    with unit_of_work(read_only=True) as uow:
        active = api_tokens.active_tokens(uow.conn, current_user.id)
    return render_template("account/tokens.html", tokens=active, form=form,
                           title=_l("Mes jetons d'accès à l'API"),
                           revoke_url=url_for("account.tokens"), owner=None,
                           scope_labels=api_tokens.SCOPES), page_status(form, status)


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Mot de passe actuel"),
                                     validators=[DataRequired(), Length(max=200)])
    new_password = PasswordField(_l("Nouveau mot de passe (8 caractères au moins)"),
                                 validators=[DataRequired(), Length(max=200)])
    new_password_again = PasswordField(
        _l("Nouveau mot de passe, une seconde fois"),
        validators=[DataRequired(), EqualTo("new_password",
                                            message=_l("Les deux mots de passe diffèrent."))])


@bp.route("/mot-de-passe", methods=["GET", "POST"])
@login_required
def password():
    """Every role changes its own password; every other session and API token ends."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            parties.change_password(unit_of_work, current_actor(),
                                    current=form.current_password.data,
                                    new=form.new_password.data, address=client_address())
        except DomainError as error:  # the new password's rules, else the current one
            status = refuse(form, error, "current_password",
                            fields={"invalid_input": "new_password"})
        else:
            # This session goes on, on the new session token; the others have ended.
            db.session.expire_all()
            start_session(db.session.get(User, current_user.id))
            flash(_("Mot de passe changé : vos autres sessions et vos jetons d'API sont "
                    "terminés."), "info")
            return redirect(url_for("account.password"))
    return render_template("account/password.html", form=form,
                           title=_l("Changer mon mot de passe")), page_status(form, status)
