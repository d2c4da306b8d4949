"""The payer's side: open a pay link (QR code) or type a short code, pay a merchant
from its fixed QR code, confirm with the password or the PIN, see the receipt.

Solistes pay here; prestataires too (B2B phase: a till request or an invoice request
addressed to them).
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from bousol.extensions import db
from bousol.ledger.access import confirm
from bousol.ledger.access.parties import normalise_party_code
from bousol.ledger.books import operations, queries
from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError, NotFound
from bousol.ledger.kernel.uow import UnitOfWork
from bousol.ledger.merchants import payment_requests
from bousol.ledger.models import User
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.formatting import fr_money
from bousol.web.forms import FieldMap, check_field, page_status, refuse

bp = Blueprint("pay", __name__, url_prefix="/payer")

PAYER_ROLES = ("soliste", "prestataire")


class CodeForm(FlaskForm):
    code = StringField(_l("Code affiché par le commerçant"),
                       validators=[DataRequired(), Length(max=12)])


class ConfirmForm(FlaskForm):
    secret = PasswordField(_l("Mot de passe ou code PIN"),
                           validators=[DataRequired(), Length(max=200)])


class MerchantPayForm(ConfirmForm):
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(), Length(max=20)])
    memo = StringField(_l("Libellé (facultatif)"), validators=[Length(max=140)])
    # Made when the form is shown: a second click or a reload replays the payment
    # instead of paying twice.
    request_key = HiddenField()


def _new_uow() -> UnitOfWork:
    return UnitOfWork(db.session, owns_session=False)


def _confirm_secret(form: ConfirmForm) -> None:
    confirm.confirm(_new_uow, user_id=current_user.id, secret=form.secret.data,
                    address=request.remote_addr or "unknown")


@bp.route("/", methods=["GET", "POST"])
@role_required(*PAYER_ROLES)
def enter_code():
    form = CodeForm()
    if form.validate_on_submit():
        with unit_of_work(read_only=True) as uow:
            found = payment_requests.by_short_code(uow.conn, form.code.data)
        if found is not None:
            return redirect(url_for("pay.pay_request", token=found.token))
        form.code.errors.append(_l("Aucune demande de paiement ne porte ce code : "
                                   "vérifiez-le auprès du commerçant."))
    return render_template("pay/enter_code.html", form=form,
                           title=_l("Payer avec un code")), page_status(form)


@bp.route("/<token>", methods=["GET", "POST"])
@role_required(*PAYER_ROLES)
def pay_request(token: str):
    with unit_of_work(read_only=True) as uow:
        view = payment_requests.by_token(uow.conn, token)
        balance = queries.party_balances(uow.conn, current_user.party_id)["BSOL"]
    if view is None:
        abort(404)
    mine = current_user.party is not None and view.payer_code == current_user.party.code
    if view.status == payment_requests.PAID and mine:
        return redirect(url_for("pay.done", entry_id=view.paid_entry_id))
    form = ConfirmForm()
    status = 200
    if view.status == payment_requests.OPEN and form.validate_on_submit():
        try:
            _confirm_secret(form)
            paid = payment_requests.pay(unit_of_work(), current_actor(), token=token)
            return redirect(url_for("pay.done", entry_id=paid.entry_id))
        except DomainError as error:
            status = refuse(form, error, "secret")
            with unit_of_work(read_only=True) as uow:  # it may have changed meanwhile
                view = payment_requests.by_token(uow.conn, token)
    return render_template("pay/request.html", view=view, form=form, balance=balance,
                           addressed_elsewhere=(view.kind == "invoice" and not mine),
                           title=_l("Payer")), page_status(form, status)


@bp.route("/commerce/<code>", methods=["GET", "POST"])
@role_required(*PAYER_ROLES)
def pay_merchant(code: str):
    """The merchant's fixed QR code (shop window, counter): the payer types the amount."""
    with unit_of_work(read_only=True) as uow:
        merchant = payment_requests.fixed_qr_payee(uow.conn, code)
    if merchant is None:
        abort(404)  # like the directory: nothing said about who is not approved
    form = MerchantPayForm()
    if not form.request_key.data:
        form.request_key.data = uuid.uuid4().hex
    status = 200
    # The amount checked first, so that its error shows by the amount field.
    if form.validate_on_submit() and check_field(form, "amount", money.parse_amount):
        try:
            _confirm_secret(form)
            paid = operations.pay(
                unit_of_work(), current_actor(), payee_code=merchant.code,
                amount=form.amount.data, memo=form.memo.data or None,
                idempotency_key=f"fixed-qr:{form.request_key.data}",
            )
            return redirect(url_for("pay.done", entry_id=paid.entry_id))
        except DomainError as error:
            status = refuse(form, error, "secret")
            # A refusal is remembered under its key: the next try is a new request.
            form.request_key.data = uuid.uuid4().hex
    return render_template("pay/merchant.html", merchant=merchant, form=form,
                           title=_l("Payer %(name)s", name=merchant.name)), \
        page_status(form, status)


class PinForm(FlaskForm):
    password = PasswordField(_l("Mot de passe actuel"),
                             validators=[DataRequired(), Length(max=200)])
    pin = PasswordField(_l("Nouveau code PIN (4 à 8 chiffres ; vide pour le supprimer)"),
                        validators=[Length(max=8)])
    pin_again = PasswordField(_l("Nouveau code PIN, une seconde fois"),
                              validators=[Length(max=8)])


@bp.route("/code-pin", methods=["GET", "POST"])
@role_required(*PAYER_ROLES)
def pin():
    """Choose a PIN to confirm payments on a phone instead of typing the password."""
    form = PinForm()
    status = 200
    if form.validate_on_submit():
        if (form.pin.data or "") != (form.pin_again.data or ""):
            form.pin_again.errors.append(_l("Les deux codes PIN ne sont pas identiques."))
        else:
            try:
                confirm.set_pin(_new_uow, current_actor(), password=form.password.data,
                                pin=form.pin.data or None,
                                address=request.remote_addr or "unknown")
                flash(_l("Code PIN enregistré.") if form.pin.data
                      else _l("Code PIN supprimé : confirmez avec votre mot de passe."), "info")
                return redirect(url_for("pay.pin"))
            except DomainError as error:  # the PIN's rules, else the password
                status = refuse(form, error, "password", fields={"invalid_input": "pin"})
    status = page_status(form, status)
    has_pin = db.session.get(User, current_user.id).pin_hash is not None
    return render_template("pay/pin.html", form=form, has_pin=has_pin,
                           title=_l("Code PIN de paiement")), status


class EarmarkedForm(ConfirmForm):
    voucher = StringField(_l("Bon d'aide"), validators=[DataRequired(), Length(max=12)])
    payee = StringField(_l("Code du prestataire"), validators=[DataRequired(), Length(max=16)])
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(), Length(max=20)])


# Where a refusal of pay_with_earmarked shows (the others: by the password or PIN).
EARMARKED_FIELDS: FieldMap = {
    "invalid_amount": "amount", "amount_exceeds_remaining": "amount", "not_found": "voucher",
    "unknown_party": "payee", "filiere_not_allowed": "payee", "flow_not_allowed": "payee"}


@bp.route("/bons", methods=["GET", "POST"])
@role_required("soliste")
def earmarked():
    """A soliste spends the earmarked Bou'Sols the CCAS credited to it (only at the
    prestataires of the allowed filières; its free Bou'Sols are not touched)."""
    if request.method == "POST":
        # The whole request (its PIN check too) goes in the audit trail as "bénéficiaire
        # CCAS": the request's teardown resets the context (issue 13).
        vouchers.hide_beneficiary_in_audit()
    with unit_of_work(read_only=True) as uow:
        mine = vouchers.earmarked_vouchers(uow.conn, current_user.party_id)
    form = EarmarkedForm()
    if request.method == "GET":
        form.payee.data = request.args.get("prestataire", "")[:16]
    status = 200
    if form.validate_on_submit():
        chosen = next((v for v in mine if str(v.id) == form.voucher.data), None)
        try:
            money.parse_amount(form.amount.data)
            if chosen is None:
                raise NotFound("Choisissez un de vos bons d'aide.")
            _confirm_secret(form)
            done = vouchers.pay_with_earmarked(
                unit_of_work(), current_actor(), voucher_id=chosen.id,
                payee_code=normalise_party_code(form.payee.data), amount=form.amount.data)
            flash(_l("%(amount)s payés à %(payee)s avec votre aide ; il reste %(rest)s sur "
                     "ce bon.", amount=fr_money(done.amount_cents),
                     payee=done.prestataire_code, rest=fr_money(done.remaining_cents)),
                  "info")
            return redirect(url_for("pay.earmarked"))
        except DomainError as error:
            status = refuse(form, error, "secret", fields=EARMARKED_FIELDS)
    return render_template("pay/earmarked.html", form=form, vouchers=mine,
                           title=_l("Mes Bou'Sols fléchés")), page_status(form, status)


@bp.route("/recu/<int:entry_id>")
@role_required(*PAYER_ROLES)
def done(entry_id: int):
    """Right after paying: the payment, as the payer's receipt (only the payer's own)."""
    with unit_of_work(read_only=True) as uow:
        receipt = payment_requests.payer_receipt(uow.conn, entry_id, current_user.party_id)
    if receipt is None:
        abort(404)
    return render_template("pay/done.html", receipt=receipt, title=_l("Paiement effectué"))
