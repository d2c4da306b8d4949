"""Log in, log out, choose the language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from bousol.extensions import db, login_manager
from bousol.ledger.models import User
from bousol.ledger.parties import authenticate
from bousol.web import unit_of_work

bp = Blueprint("auth", __name__)

HOME_BY_ROLE = {
    "soliste": "member.home",
    "prestataire": "merchant.home",
    "ccas": "ccas.home",
    "bank": "desk.home",
    "admin": "admin.home",
}


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


class LoginForm(FlaskForm):
    username = StringField(_l("Identifiant"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Mot de passe"), validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class LanguageForm(FlaskForm):
    lang = HiddenField(validators=[DataRequired()])
    next = HiddenField()


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never redirect a user off to another host."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.app_context_processor
def inject_language_form():
    return {"language_form": LanguageForm(), "home_endpoint": HOME_BY_ROLE}


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for(HOME_BY_ROLE[current_user.role]))
    return redirect(url_for("auth.login"))


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = authenticate(unit_of_work(read_only=True), form.username.data,
                            form.password.data)
        if user is None:
            form.password.errors.append(_l("Identifiant ou mot de passe incorrect."))
        else:
            login_user(user)
            session.permanent = False
            return redirect(_safe_next(form.next.data) or url_for(HOME_BY_ROLE[user.role]))
    status = 200 if not form.errors else 422
    return render_template("auth/login.html", form=form), status


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash(_l("Vous êtes déconnecté."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/langue", methods=["POST"])
def language():
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in ("fr", "en"):
        session["lang"] = form.lang.data
    return redirect(_safe_next(form.next.data) or url_for("auth.index"))
