"""The prestataire takes payments: a request at the till (QR code, short code, the
screen updating itself when paid), its fixed QR code, refunds, and in the B2B phase
paying a supplier or sending an invoice request to a customer prestataire."""

from __future__ import annotations

import uuid

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from bousol.ledger.access.parties import normalise_party_code
from bousol.ledger.books import operations, rules
from bousol.ledger.kernel import money, settings
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.merchants import payment_requests, refunds
from bousol.web import current_actor, qr, role_required, unit_of_work
from bousol.web.forms import check_field, flash_refusal, or_404, page_status, refuse
from bousol.web.merchant.views import bp
from bousol.web.pay import ConfirmForm, _confirm_secret

STATUS_LABELS = {
    "open": _l("En attente du paiement"),
    "paid": _l("Payée"),
    "declined": _l("Refusée par le client"),
    "cancelled": _l("Annulée"),
    "expired": _l("Expirée"),
}


class TillForm(FlaskForm):
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(), Length(max=20)])
    reference = StringField(_l("Référence (facultatif)"), validators=[Length(max=140)])


class InvoiceRequestForm(FlaskForm):
    customer = StringField(_l("Code du client prestataire"),
                           validators=[DataRequired(), Length(max=16)])
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(), Length(max=20)])
    reference = StringField(_l("Référence de la facture"),
                            validators=[DataRequired(), Length(max=140)])


class SupplierPayForm(ConfirmForm):
    supplier = StringField(_l("Code du fournisseur"), validators=[DataRequired(), Length(max=16)])
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(), Length(max=20)])
    reference = StringField(_l("Référence de la facture"),
                            validators=[DataRequired(), Length(max=140)])
    request_key = HiddenField()


class RefundForm(FlaskForm):
    amount = StringField(_l("Montant à rembourser"), validators=[DataRequired(), Length(max=20)])
    memo = StringField(_l("Motif (facultatif)"), validators=[Length(max=140)])
    request_key = HiddenField()


class DeclineForm(FlaskForm):
    reason = StringField(_l("Motif du refus (facultatif)"), validators=[Length(max=200)])


def _amount_ok(form: FlaskForm) -> bool:
    """Check the amount first, so that its message shows beside its own field."""
    return check_field(form, "amount", money.parse_amount)


def _b2b_open() -> bool:
    with unit_of_work(read_only=True) as uow:
        return settings.current(uow.conn, ["phase.b2b"])["phase.b2b"] == "on"


# ---------------------------------------------------------------- at the till


@bp.route("/encaisser", methods=["GET", "POST"])
@role_required("prestataire")
def till():
    form = TillForm()
    status = 200
    if form.validate_on_submit() and _amount_ok(form):
        try:
            view = payment_requests.create_till_request(
                unit_of_work(), current_actor(), amount=form.amount.data,
                reference=form.reference.data or None)
            return redirect(url_for("merchant.payment_request", request_id=view.id))
        except DomainError as error:
            status = refuse(form, error, "amount")
    return render_template("merchant/till.html", form=form, party=current_user.party,
                           title=_l("Encaisser un paiement")), page_status(form, status)


def _own_request(request_id: int):
    with unit_of_work(read_only=True) as uow:
        view = payment_requests.for_payee(uow.conn, current_user.party_id, request_id)
    if view is None:
        abort(404)
    return view


@bp.route("/demandes/<int:request_id>")
@role_required("prestataire")
def payment_request(request_id: int):
    view = _own_request(request_id)
    pay_url = url_for("pay.pay_request", token=view.token, _external=True)
    return render_template("merchant/request.html", view=view, pay_url=pay_url,
                           status_labels=STATUS_LABELS, cancel_form=FlaskForm(),
                           title=_l("Demande de paiement")), 200


@bp.route("/demandes/<int:request_id>/etat")
@role_required("prestataire")
def payment_request_status(request_id: int):
    """Polled by the till's screen (static/js/payment-request.js) every two seconds."""
    view = _own_request(request_id)
    response = jsonify(
        status=view.status, label=str(STATUS_LABELS[view.status]),
        amount=money.format_plain(view.amount_cents),
        payer=(f"{view.payer_name} ({view.payer_code})"
               if view.status == "paid" and view.payer_code else None),
        paid_entry_id=view.paid_entry_id,
        refund_url=(url_for("merchant.refund", entry_id=view.paid_entry_id)
                    if view.paid_entry_id else None),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/demandes/<int:request_id>/qr.svg")
@role_required("prestataire")
def payment_request_qr(request_id: int):
    view = _own_request(request_id)
    return qr.svg_response(url_for("pay.pay_request", token=view.token, _external=True))


@bp.route("/demandes/<int:request_id>/annuler", methods=["POST"])
@role_required("prestataire")
def cancel_request(request_id: int):
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        payment_requests.cancel(unit_of_work(), current_actor(), request_id=request_id)
        flash(_("Demande annulée."), "info")
    except DomainError as error:
        flash_refusal(error)
    return redirect(url_for("merchant.payment_request", request_id=request_id))


@bp.route("/demandes")
@role_required("prestataire")
def payment_requests_list():
    with unit_of_work(read_only=True) as uow:
        sent = payment_requests.sent_by(uow.conn, current_user.party_id, limit=50)
        received = payment_requests.addressed_to(uow.conn, current_user.party_id, limit=50)
    return render_template("merchant/requests.html", sent=sent, received=received,
                           status_labels=STATUS_LABELS, decline_form=DeclineForm(),
                           title=_l("Demandes de paiement"))


# ---------------------------------------------------------------- the fixed QR code


@bp.route("/qr")
@role_required("prestataire")
def fixed_qr():
    party = current_user.party
    pay_url = url_for("pay.pay_merchant", code=party.code, _external=True)
    return render_template("merchant/fixed_qr.html", party=party, pay_url=pay_url,
                           title=_l("Mon QR code fixe"))


@bp.route("/qr.svg")
@role_required("prestataire")
def fixed_qr_svg():
    return qr.svg_response(url_for("pay.pay_merchant", code=current_user.party.code,
                                   _external=True))


# ---------------------------------------------------------------- refunds


@bp.route("/paiements/<int:entry_id>/rembourser", methods=["GET", "POST"])
@role_required("prestataire")
def refund(entry_id: int):
    actor = current_actor()
    with or_404():
        with unit_of_work(read_only=True) as uow:
            payment = refunds.refundable(uow.conn, actor, entry_id)
    form = RefundForm()
    if not form.request_key.data:
        form.request_key.data = uuid.uuid4().hex
    if request.method == "GET" and payment.remaining_cents > 0:
        form.amount.data = money.format_fr(payment.remaining_cents)
    status = 200
    if form.validate_on_submit() and _amount_ok(form):
        try:
            refunds.refund(unit_of_work(), actor, payment_entry_id=entry_id,
                           amount=form.amount.data, memo=form.memo.data or None,
                           idempotency_key=f"refund:{form.request_key.data}")
            flash(_("Remboursement enregistré."), "info")
            return redirect(url_for("merchant.refund", entry_id=entry_id))
        except DomainError as error:
            status = refuse(form, error, "amount")
            form.request_key.data = uuid.uuid4().hex  # a refusal is remembered per key
    with unit_of_work(read_only=True) as uow:
        payment = refunds.refundable(uow.conn, actor, entry_id)
        done = refunds.refunds_of(uow.conn, entry_id)
    return render_template("merchant/refund.html", payment=payment, done=done, form=form,
                           title=_l("Rembourser un paiement")), page_status(form, status)


# ---------------------------------------------------------------- B2B


@bp.route("/fournisseur/payer", methods=["GET", "POST"])
@role_required("prestataire")
def pay_supplier():
    form = SupplierPayForm()
    if not form.request_key.data:
        form.request_key.data = uuid.uuid4().hex
    status = 200
    if form.validate_on_submit() and _amount_ok(form):
        try:
            _confirm_secret(form)
            paid = operations.pay(
                unit_of_work(), current_actor(),
                payee_code=normalise_party_code(form.supplier.data),
                amount=form.amount.data, memo=form.reference.data,
                idempotency_key=f"supplier:{form.request_key.data}")
            return redirect(url_for("pay.done", entry_id=paid.entry_id))
        except DomainError as error:
            status = refuse(form, error, "secret", fields={"unknown_party": "supplier"})
            form.request_key.data = uuid.uuid4().hex
    return render_template("merchant/pay_supplier.html", form=form, b2b_open=_b2b_open(),
                           phase_label=rules.PHASE_LABELS[rules.Phase.B2B],
                           title=_l("Payer un fournisseur")), page_status(form, status)


@bp.route("/factures/nouvelle", methods=["GET", "POST"])
@role_required("prestataire")
def invoice_request():
    form = InvoiceRequestForm()
    status = 200
    if form.validate_on_submit() and _amount_ok(form):
        try:
            view = payment_requests.create_invoice_request(
                unit_of_work(), current_actor(),
                customer_code=normalise_party_code(form.customer.data),
                amount=form.amount.data, reference=form.reference.data)
            flash(_("Demande envoyée à %(name)s.", name=view.payer_name), "info")
            return redirect(url_for("merchant.payment_requests_list"))
        except DomainError as error:  # the amount was checked above: about the customer
            status = refuse(form, error, "customer", fields={DomainError: "customer"})
    return render_template("merchant/invoice_request.html", form=form, b2b_open=_b2b_open(),
                           phase_label=rules.PHASE_LABELS[rules.Phase.B2B],
                           title=_l("Demander le paiement d'une facture")), \
        page_status(form, status)


@bp.route("/factures/<token>/refuser", methods=["POST"])
@role_required("prestataire")
def decline_invoice(token: str):
    form = DeclineForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        payment_requests.decline(unit_of_work(), current_actor(), token=token,
                                 reason=form.reason.data or None)
        flash(_("Facture refusée : le fournisseur le voit."), "info")
    except DomainError as error:
        flash_refusal(error, not_found_404=True)
    return redirect(url_for("merchant.payment_requests_list"))
