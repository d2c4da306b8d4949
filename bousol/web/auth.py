"""Log in, log out, a forgotten password, idle sessions, choose the language."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from bousol.extensions import db, login_manager
from bousol.ledger.access import logins, password_resets
from bousol.ledger.access.parties import PASSWORD_MAX, authenticate
from bousol.ledger.kernel import clock, mail
from bousol.ledger.kernel.errors import DomainError, TooManyAttempts
from bousol.ledger.models import User
from bousol.web import public_url, unit_of_work
from bousol.web.forms import page_status, refuse

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
    # Browsers read "/\evil.example" as "//evil.example", and drop tabs and newlines
    # before deciding: neither has any place in one of our paths.
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
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


STAFF_ROLES = ("bank", "admin", "ccas")
SEEN_AT = "seen_at"  # the session's last request, epoch seconds of the ledger's clock


def _idle_limit(role: str) -> int:
    key = "STAFF_SESSION_IDLE_MINUTES" if role in STAFF_ROLES else "SESSION_IDLE_MINUTES"
    return int(current_app.config[key]) * 60


@bp.before_app_request
def end_idle_sessions():
    """A session unused for the idle time of its role ends (docs/security.md): the
    request goes on as an anonymous one, so a page that needs a log-in asks for it."""
    if request.endpoint == "static" or not current_user.is_authenticated:
        return
    now = int(clock.now().timestamp())
    seen = session.get(SEEN_AT)
    if isinstance(seen, int) and now - seen > _idle_limit(current_user.role):
        logout_user()
        _fresh_session()
        flash(_l("Votre session a pris fin après une période d'inactivité : "
                 "reconnectez-vous."), "info")
        return
    if not isinstance(seen, int) or now - seen >= 30:  # rewrite the cookie twice a minute at most
        session[SEEN_AT] = now


def _fresh_session() -> None:
    """Nothing of the previous session carries over but the language: a new CSRF token
    (Flask-WTF makes one when the next form needs it)."""
    lang = session.get("lang")
    session.clear()
    g.pop("csrf_token", None)
    if lang:
        session["lang"] = lang


def start_session(user: User) -> None:
    """Log ``user`` in on a fresh session (also after a password reset)."""
    _fresh_session()
    login_user(user)
    session.permanent = False
    session[SEEN_AT] = int(clock.now().timestamp())


def client_address() -> str:
    # With BOUSOL_PROXIES set, ProxyFix has put the client's own address here.
    return (request.remote_addr or "unknown")[:64]


def _too_many(form: LoginForm, error: TooManyAttempts):
    form.password.errors.append(
        _l("Trop de tentatives : réessayez dans %(minutes)d minute(s). "
           "Mot de passe oublié ? Un lien par courriel vous connecte tout de suite.",
           minutes=error.details["minutes"]))
    return render_template("auth/login.html", form=form), 429, {
        "Retry-After": str(error.details["retry_after"])}


@bp.route("/connexion", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        username, password = form.username.data, form.password.data
        try:
            # The attempt is reserved before the hash is checked (bousol/ledger/access/logins.py).
            user = logins.guarded(
                unit_of_work, username, client_address(),
                lambda: authenticate(unit_of_work(read_only=True), username, password))
        except TooManyAttempts as error:
            return _too_many(form, error)
        if user is None:
            form.password.errors.append(_l("Identifiant ou mot de passe incorrect."))
        else:
            start_session(user)
            return redirect(_safe_next(form.next.data) or url_for(HOME_BY_ROLE[user.role]))
    return render_template("auth/login.html", form=form), page_status(form)


class ForgottenForm(FlaskForm):
    email = EmailField(_l("L'adresse e-mail de votre compte"),
                       validators=[DataRequired(), Length(max=200)])


class NewPasswordForm(FlaskForm):
    new_password = PasswordField(_l("Nouveau mot de passe (8 caractères au moins)"),
                                 validators=[DataRequired(), Length(max=PASSWORD_MAX)])
    new_password_again = PasswordField(
        _l("Nouveau mot de passe, une seconde fois"),
        validators=[DataRequired(), EqualTo("new_password",
                                            message=_l("Les deux mots de passe diffèrent."))])


def _reset_link(token: str) -> str:
    return public_url(url_for("auth.reset_password", token=token))


@bp.route("/mot-de-passe-oublie", methods=["GET", "POST"])
def forgotten_password():
    """The same answer whether the address is known or not (docs/security.md)."""
    form = ForgottenForm()
    if form.validate_on_submit():
        password_resets.request_link(
            unit_of_work, email=form.email.data, address=client_address(),
            mailer=mail.from_config(current_app.config), link_for=_reset_link)
        flash(_l("Si cette adresse est celle d'un compte de soliste ou de prestataire, "
                 "un courriel vient d'y partir avec un lien valable 30 minutes. "
                 "Pensez à regarder dans les indésirables."), "info")
        return redirect(url_for("auth.forgotten_password"))
    return render_template("auth/forgotten.html", form=form,
                           title=_l("Mot de passe oublié")), page_status(form)


@bp.route("/mot-de-passe/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            reset = password_resets.use_link(unit_of_work, token=token,
                                             password=form.new_password.data,
                                             address=client_address())
        except password_resets.InvalidResetLink as error:
            return render_template("auth/reset.html", form=None, error=error.message,
                                   title=_l("Nouveau mot de passe")), 410
        except DomainError as error:  # the password's rules
            status = refuse(form, error, "new_password")
        else:
            db.session.expire_all()
            user = db.session.get(User, reset.user_id)
            start_session(user)
            flash(_l("Nouveau mot de passe enregistré : vous êtes connecté, et toutes vos "
                     "autres sessions sont terminées."), "info")
            return redirect(url_for(HOME_BY_ROLE[user.role]))
    elif request.method == "GET" and not password_resets.is_valid(
            unit_of_work(read_only=True), token):
        return render_template("auth/reset.html", form=None,
                               error=password_resets.InvalidResetLink.default_message,
                               title=_l("Nouveau mot de passe")), 410
    return render_template("auth/reset.html", form=form, error=None,
                           title=_l("Nouveau mot de passe")), page_status(form, status)


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
