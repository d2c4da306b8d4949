"""The exchange desk of the banque SOL: find a member, exchange euros for Bou'Sols
(shown before it is confirmed), print the receipt."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bousol import money
from bousol.ledger import members, operations, queries, settings
from bousol.ledger.errors import DomainError
from bousol.web import current_actor, role_required, unit_of_work, views
from bousol.web.formatting import fr_date, fr_money

bp = Blueprint("desk", __name__, url_prefix="/comptoir")

EXCHANGE_KINDS = ("soliste", "ccas")  # who can buy Bou'Sols at the desk
RECONVERSION_KINDS = ("prestataire",)  # who can turn Bou'Sols back into euros
TENDER_LABELS = {"cash": _l("Espèces"), "cheque": _l("Chèque"), "card": _l("Carte bancaire")}


class ExchangeForm(FlaskForm):
    euros = StringField(_l("Montant en euros"), validators=[DataRequired(), Length(max=20)])
    tender = RadioField(
        _l("Moyen de paiement"),
        choices=[SelectChoice(value, label) for value, label in TENDER_LABELS.items()],
        default="cash", validators=[DataRequired()],
    )
    # Made when the amount is shown for confirmation: a second click on "Confirmer"
    # (or a reload) replays the same request instead of exchanging twice.
    request_key = HiddenField()


class ReconversionForm(FlaskForm):
    bousols = StringField(_l("Bou'Sols à reconvertir"),
                          validators=[DataRequired(), Length(max=20)])
    request_key = HiddenField()  # made at the preview: a second click replays


class RegisterForm(FlaskForm):
    name = StringField(_l("Nom et prénom"), validators=[DataRequired(), Length(max=200)])
    phone = StringField(_l("Téléphone"), validators=[Length(max=32)])
    email = StringField(_l("Courriel"), validators=[Length(max=200)])
    address = StringField(_l("Adresse"), validators=[Length(max=300)])
    commune = StringField(_l("Commune"), validators=[Length(max=100)])
    charter = BooleanField(
        _l("La personne a lu et accepte la charte du Bou'Sol"),
        validators=[DataRequired(_l("L'adhésion suppose d'accepter la charte."))],
    )
    tender = RadioField(
        _l("Cotisation payée par"),
        choices=[SelectChoice(value, label) for value, label in TENDER_LABELS.items()],
        default="cash", validators=[DataRequired()],
    )


@bp.route("/")
@role_required("bank")
def home():
    return views.system_home(_("Comptoir de change"))


@bp.route("/reserve")
@role_required("bank")
def reserve():
    return views.reserve(_("Réserve et couverture"))


@bp.route("/adherents")
@role_required("bank")
def search():
    text = request.args.get("q", "")[:100]
    with unit_of_work(read_only=True) as uow:
        found = queries.search_parties(uow.conn, text,
                                       kinds=EXCHANGE_KINDS + RECONVERSION_KINDS)
    return render_template("desk/search.html", title=_("Rechercher un adhérent"), q=text,
                           found=found)


@bp.route("/adherents/nouveau", methods=["GET", "POST"])
@role_required("bank")
def register():
    form = RegisterForm()
    with unit_of_work(read_only=True) as uow:
        fee = settings.current(uow.conn, [members.FEE_KEY])[members.FEE_KEY]
    title = _("Nouvel adhérent soliste")
    if form.validate_on_submit():
        try:
            membership = members.register_soliste(
                unit_of_work(), current_actor(), name=form.name.data,
                charter_accepted=form.charter.data, tender=form.tender.data,
                phone=form.phone.data, email=form.email.data, address=form.address.data,
                commune=form.commune.data,
            )
        except DomainError as error:
            form.name.errors.append(error.message)
        else:
            flash(_("Adhérent %(code)s enregistré ; cotisation de %(fee)s encaissée, valable "
                    "jusqu'au %(until)s.", code=membership.party_code,
                    fee=fr_money(membership.fee_cents, "EUR"),
                    until=fr_date(membership.membership_until)), "info")
            return redirect(url_for("desk.exchange", code=membership.party_code))
    status = 422 if form.errors else 200
    return render_template("desk/register.html", title=title, form=form,
                           fee_cents=int(fee)), status


def _member(code: str, kinds: tuple[str, ...] = EXCHANGE_KINDS):
    with unit_of_work(read_only=True) as uow:
        member = queries.party_by_code(uow.conn, code)
    if member is None or member.kind not in kinds:
        abort(404)
    return member


@bp.route("/reconversion/<code>", methods=["GET", "POST"])
@role_required("bank")
def reconversion(code: str):
    member = _member(code, RECONVERSION_KINDS)
    form = ReconversionForm()
    title = _("Reconversion Bou'Sols → euros")
    with unit_of_work(read_only=True) as uow:
        balances = queries.party_balances(uow.conn, member.id)
        fee_bp = int(settings.current(uow.conn, ["reconversion.fee_bp"])["reconversion.fee_bp"])

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/reconversion.html", title=title, member=member,
                               form=form, step=step, balances=balances, fee_bp=fee_bp,
                               **extra), status

    if not form.validate_on_submit():
        return page("enter", 422 if form.errors else 200)
    try:
        bousol_cents = money.parse_amount(form.bousols.data)
    except DomainError as error:
        form.bousols.errors.append(error.message)
        return page("enter", 422)
    if "confirm" not in request.form:
        form.request_key.data = uuid.uuid4().hex
        fee_cents = money.fee_for(bousol_cents, fee_bp)
        return page("confirm", bousol_cents=bousol_cents, fee_cents=fee_cents,
                    euro_cents=bousol_cents - fee_cents)
    try:
        result = operations.reconvert(
            unit_of_work(), current_actor(), prestataire_code=member.code,
            bousols=form.bousols.data, idempotency_key=form.request_key.data or None,
        )
    except DomainError as error:
        form.bousols.errors.append(error.message)
        return page("enter", error.http_status)
    return redirect(url_for("desk.receipt", entry_id=result.entry_id))


@bp.route("/change/<code>", methods=["GET", "POST"])
@role_required("bank")
def exchange(code: str):
    member = _member(code)
    form = ExchangeForm()
    title = _("Change euros → Bou'Sols")
    if not form.validate_on_submit():
        status = 422 if form.errors else 200
        return render_template("desk/exchange.html", title=title, member=member, form=form,
                               step="enter"), status
    try:
        euro_cents = money.parse_amount(form.euros.data)
    except DomainError as error:
        form.euros.errors.append(error.message)
        return render_template("desk/exchange.html", title=title, member=member, form=form,
                               step="enter"), 422
    if "confirm" not in request.form:
        form.request_key.data = uuid.uuid4().hex
        bousol_cents, _bonus = money.bousols_for_euros(euro_cents)
        return render_template("desk/exchange.html", title=title, member=member, form=form,
                               step="confirm", euro_cents=euro_cents,
                               bousol_cents=bousol_cents,
                               tender_label=TENDER_LABELS[form.tender.data])
    try:
        result = operations.exchange(
            unit_of_work(), current_actor(), party_code=member.code, euros=form.euros.data,
            tender=form.tender.data, idempotency_key=form.request_key.data or None,
        )
    except DomainError as error:
        form.euros.errors.append(error.message)
        return render_template("desk/exchange.html", title=title, member=member, form=form,
                               step="enter"), error.http_status
    return redirect(url_for("desk.receipt", entry_id=result.entry_id))


@bp.route("/recu/<int:entry_id>")
@role_required("bank", "admin")
def receipt(entry_id: int):
    with unit_of_work(read_only=True) as uow:
        exchange_found = queries.exchange_receipt(uow.conn, entry_id)
        reconversion_found = (None if exchange_found
                              else queries.reconversion_receipt(uow.conn, entry_id))
    if exchange_found is not None:
        return render_template("desk/receipt.html", title=_("Reçu de change"),
                               receipt=exchange_found, tenders=TENDER_LABELS)
    if reconversion_found is not None:
        return render_template("desk/reconversion_receipt.html",
                               title=_("Bordereau de reconversion"),
                               receipt=reconversion_found)
    abort(404)
