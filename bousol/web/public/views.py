"""Public pages, no login: becoming a prestataire (the online application) and the
directory "Où payer en Bou'Sol ?" of approved prestataires. Nothing personal is shown
here: the directory reads only the business fields (bousol/ledger/merchants/directory.py)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import EqualTo, Length

from bousol.extensions import db
from bousol.ledger.access import logins, parties
from bousol.ledger.kernel.errors import DomainError, DuplicateUser, TooManyAttempts
from bousol.ledger.merchants import approval
from bousol.ledger.merchants import directory as public_directory
from bousol.ledger.models import FILIERE_LABELS, User
from bousol.web import unit_of_work
from bousol.web.forms import FieldMap, page_status, refuse_fields
from bousol.web.pages import numbered

bp = Blueprint("public", __name__)

SEARCH_MAX = 100


def _filiere_choices() -> list[SelectChoice]:
    return [SelectChoice("", _l("— Choisissez —"))] + [
        SelectChoice(f.value, _l(label)) for f, label in FILIERE_LABELS.items()]


class ApplicationForm(FlaskForm):
    """The application's fields; the ledger checks them (drafts need fewer)."""

    name = StringField(_l("Nom de l'entreprise ou de la structure"),
                       validators=[Length(max=200)])
    legal_form = SelectField(
        _l("Forme juridique"), validate_choice=False,
        choices=[SelectChoice("", _l("— Choisissez —"))] + [
            SelectChoice(key, _l(label)) for key, label in approval.LEGAL_FORMS.items()])
    siret = StringField(_l("SIRET (14 chiffres)"), validators=[Length(max=40)])
    address = StringField(_l("Adresse"), validators=[Length(max=300)])
    commune = StringField(_l("Commune"), validators=[Length(max=100)])
    filiere = SelectField(_l("Filière"), validate_choice=False, choices=_filiere_choices)
    contact_name = StringField(_l("Nom et prénom de la personne à contacter"),
                               validators=[Length(max=200)])
    phone = StringField(_l("Téléphone"), validators=[Length(max=32)])
    email = EmailField(_l("Courriel"), validators=[Length(max=200)])
    iban = StringField(_l("IBAN du compte de l'entreprise"), validators=[Length(max=50)])
    bic = StringField(_l("BIC (facultatif)"), validators=[Length(max=20)])
    charter = BooleanField(_l("J'ai lu la charte du Bou'Sol et l'accepte au nom de "
                              "l'entreprise ou de la structure"))

    def application(self) -> dict[str, object]:
        """The fields as :func:`bousol.ledger.merchants.approval.apply` takes them."""
        return {
            "name": self.name.data, "legal_form": self.legal_form.data or None,
            "siret": self.siret.data, "address": self.address.data,
            "commune": self.commune.data, "filiere": self.filiere.data or None,
            "contact_name": self.contact_name.data, "phone": self.phone.data,
            "email": self.email.data, "iban": self.iban.data, "bic": self.bic.data,
            "charter_accepted": bool(self.charter.data),
        }


class PublicApplicationForm(ApplicationForm):
    username = StringField(_l("Identifiant de connexion"), validators=[Length(max=80)])
    password = PasswordField(_l("Mot de passe (8 caractères au moins)"),
                             validators=[Length(max=200)])
    password_confirm = PasswordField(
        _l("Mot de passe, une seconde fois"),
        validators=[EqualTo("password", message=_l("Les deux mots de passe diffèrent."))])


# The ledger's field names → the form's, where they differ.
FORM_FIELDS: FieldMap = {"charter_accepted": "charter"}


def attach_errors(form: FlaskForm, error: DomainError) -> None:
    """Show a refusal of the ledger beside the field(s) it is about (else on top)."""
    refuse_fields(form, error, FORM_FIELDS)


def checked(form: ApplicationForm) -> bool:
    """The form's own checks (CSRF, lengths, the password typed twice); when they fail,
    the ledger's checks run too (writing nothing), so that every error shows at once."""
    if form.validate_on_submit():
        return True
    if form.is_submitted():
        data = approval.ApplicationData(**form.application())
        try:
            approval.check_application(data, to_submit=wants_submit())
        except DomainError as error:
            attach_errors(form, error)
        if isinstance(form, PublicApplicationForm):
            try:
                parties.check_credentials(form.username.data, form.password.data)
            except DomainError as error:
                attach_errors(form, error)
    return False


def wants_submit() -> bool:
    """Which button was pressed: "send the application" or "save the draft"."""
    return request.form.get("action") == "submit"


@bp.route("/agrement", methods=["GET", "POST"])
def apply():
    if current_user.is_authenticated:
        if current_user.role == "prestataire":
            return redirect(url_for("merchant.application"))
        return render_template("public/agrement.html", title=_("Devenir prestataire"),
                               form=None)
    form = PublicApplicationForm()
    status = 200
    if checked(form):
        try:
            applied = approval.apply(
                unit_of_work(), username=form.username.data, password=form.password.data,
                submit=wants_submit(), **form.application())
        except DuplicateUser:
            status = _username_unavailable(form)
        except DomainError as error:
            attach_errors(form, error)
        else:
            login_user(db.session.get(User, applied.user_id))
            session.permanent = False
            if applied.status == approval.Status.SUBMITTED:
                flash(_("Demande d'agrément envoyée : l'association l'examine et vous "
                        "répondra ici."), "info")
            else:
                flash(_("Brouillon enregistré : complétez-le et envoyez-le quand vous "
                        "voulez."), "info")
            return redirect(url_for("merchant.application"))
    return render_template("public/agrement.html", title=_("Devenir prestataire"),
                           form=form), page_status(form, status)


def _username_unavailable(form: PublicApplicationForm) -> int:
    """The username is taken: say so only for an application complete enough to be
    sent, and at most ``logins.MAX_SIGNUP_REFUSALS`` times per address and window
    (docs/security.md), in words that name no account."""
    data = approval.ApplicationData(**{**form.application(), "charter_accepted": True})
    try:
        approval.check_application(data, to_submit=True)
    except DomainError as error:
        attach_errors(form, error)
        form.username.errors = [_(
            "Complétez d'abord toute la demande (tous les champs nécessaires à l'envoi) : "
            "l'identifiant est vérifié ensuite.")]
        return 422
    try:
        logins.reserve(unit_of_work(), "", request.remote_addr or "unknown", kind="signup")
    except TooManyAttempts as error:
        form.username.errors = [_(
            "Trop d'identifiants refusés depuis votre connexion : réessayez dans "
            "%(minutes)d minute(s).", minutes=error.details["minutes"])]
        return 429
    form.username.errors = [_("Cet identifiant n'est pas disponible : choisissez-en un "
                              "autre.")]
    return 422


DIRECTORY_PAGE = 60


@bp.route("/annuaire")
def directory():
    q = request.args.get("q", "")[:SEARCH_MAX].strip()
    filiere = request.args.get("filiere", "")[:40]
    commune = request.args.get("commune", "")[:SEARCH_MAX]
    with unit_of_work(read_only=True, stale_ok=True) as uow:  # public: the replica
        communes = public_directory.directory_communes(uow.conn)
        entries = public_directory.directory(uow.conn, q=q or None, filiere=filiere or None,
                                     commune=commune or None)
    # Pages of DIRECTORY_PAGE, in the list's order: the approved prestataires are a few
    # thousand at most (the territory's businesses), read and sorted in one query; the
    # page renders only its own (rendering them all took the time, not the query).
    shown = numbered(entries, DIRECTORY_PAGE)
    args = {k: v for k, v in (("q", q), ("filiere", filiere), ("commune", commune)) if v}
    return render_template(
        "public/annuaire.html", title=_("Où payer en Bou'Sol ?"), entries=shown.items,
        total=shown.total, page=shown.page, page_count=shown.pages, page_args=args,
        communes=communes, filieres=FILIERE_LABELS, q=q, filiere=filiere, commune=commune,
        searched=bool(q or filiere or commune))


@bp.route("/annuaire/<code>")
def entry(code: str):
    with unit_of_work(read_only=True, stale_ok=True) as uow:
        found = public_directory.directory_entry(uow.conn, code)
    if found is None:
        abort(404)
    return render_template("public/prestataire.html", title=found.name, entry=found)
