"""Log in, log out, choose the language."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from bousol.extensions import db, login_manager
from bousol.ledger import logins
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
def load_user(session_id: str) -> User | None:
    """The session cookie names ``<user id>:<session token>``; a rotated token (logout
    elsewhere, password change) no longer matches, and the session is over."""
    user_id, _, token = session_id.partition(":")
    if not user_id.isdigit() or not token:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not hmac.compare_digest(user.session_token, token):
        return None
    return user


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


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for it whatever the page says; answer with our icon, not a 404."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = LoginForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        address = request.remote_addr or "unknown"
        wait = logins.seconds_to_wait(unit_of_work(read_only=True), form.username.data, address)
        if wait:
            minutes = max(1, -(-wait // 60))
            form.password.errors.append(
                _l("Trop de tentatives : réessayez dans %(minutes)d minute(s).", minutes=minutes))
            return render_template("auth/login.html", form=form), 429, {
                "Retry-After": str(wait)}
        user = authenticate(unit_of_work(read_only=True), form.username.data,
                            form.password.data)
        logins.record_attempt(unit_of_work(), form.username.data, address, user is not None)
        if user is None:
            form.password.errors.append(_l("Identifiant ou mot de passe incorrect."))
        else:
            login_user(user)
            session.permanent = False
            return redirect(_safe_next(form.next.data) or url_for(HOME_BY_ROLE[user.role]))
    if form.errors:
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.route("/deconnexion", methods=["POST"])
@login_required
def logout():
    logins.end_all_sessions(unit_of_work(), current_user.id)  # on every device
    logout_user()
    flash(_l("Vous êtes déconnecté."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/langue", methods=["POST"])
def language():
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in ("fr", "en"):
        session["lang"] = form.lang.data
    return redirect(_safe_next(form.next.data) or url_for("auth.index"))
