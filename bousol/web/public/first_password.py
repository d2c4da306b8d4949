"""The page where a soliste registered at the desk chooses their first password, with
the one-time code printed on their registration sheet (bousol/ledger/access/first_login.py).
No log-in needed; its routes join the public blueprint."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from bousol.ledger.access import first_login
from bousol.ledger.kernel.errors import DomainError
from bousol.web import unit_of_work
from bousol.web.forms import page_status, refuse
from bousol.web.public.views import bp


class FirstPasswordForm(FlaskForm):
    username = StringField(_l("Identifiant (sur votre fiche d'adhésion)"),
                           validators=[DataRequired(), Length(max=80)])
    code = StringField(_l("Code à usage unique (sur votre fiche d'adhésion)"),
                       validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mot de passe choisi (8 caractères au moins)"),
                             validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("Le même mot de passe, une seconde fois"),
                            validators=[DataRequired(), EqualTo(
                                "password", _l("Les deux mots de passe diffèrent."))])


@bp.route("/premier-mot-de-passe", methods=["GET", "POST"])
def first_password():
    form = FirstPasswordForm()
    if form.validate_on_submit():
        try:
            first_login.set_first_password(unit_of_work(), username=form.username.data,
                                           code=form.code.data, password=form.password.data)
        except first_login.InvalidFirstCode:
            form.code.errors.append(_(first_login.InvalidFirstCode.default_message))
        except DomainError as error:  # the password's rules
            refuse(form, error, "password")
        else:
            flash(_("Mot de passe enregistré : connectez-vous avec votre identifiant."),
                  "info")
            return redirect(url_for("auth.login"))
    return render_template("public/first_password.html",
                           title=_("Choisir mon premier mot de passe"), form=form), \
        page_status(form)
