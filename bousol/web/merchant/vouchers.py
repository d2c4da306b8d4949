"""The prestataire takes an aid voucher at the till: scan its QR code (it opens
``/prestataire/bons/<code>``) or type the code, see what it is worth, enter the
purchase's amount. The till never sees who the voucher was given to."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from bousol.ledger.ccas import vouchers
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError, InvalidCode, NotFound
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.forms import page_status, refuse
from bousol.web.merchant.views import bp

STATUS_LABELS = {
    "open": _l("Valable"),
    "redeemed": _l("Entièrement utilisé"),
    "expired": _l("Expiré"),
    "cancelled": _l("Annulé par le CCAS"),
}


class CodeForm(FlaskForm):
    code = StringField(_l("Code du bon d'aide"), validators=[DataRequired(), Length(max=60)])


class RedeemForm(FlaskForm):
    amount = StringField(_l("Montant de l'achat en Bou'Sols"),
                         validators=[DataRequired(), Length(max=20)])
    # Made when the page is shown: a second click does not take the voucher twice.
    request_key = HiddenField()


@bp.route("/bons", methods=["GET", "POST"])
@role_required("prestataire")
def vouchers_home():
    """Type the code when no camera is at hand (the QR code opens the next page)."""
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work(read_only=True) as uow:
                view = vouchers.lookup(uow.conn, form.code.data)
            return redirect(url_for("merchant.voucher_redeem", code=view.code))
        except DomainError as error:
            status = refuse(form, error, "code")
    return render_template("merchant/vouchers.html", form=form, party=current_user.party,
                           title=_l("Accepter un bon d'aide")), page_status(form, status)


@bp.route("/bons/<code>", methods=["GET", "POST"])
@role_required("prestataire")
def voucher_redeem(code: str):
    try:
        with unit_of_work(read_only=True) as uow:
            view = vouchers.lookup(uow.conn, code)
    except (InvalidCode, NotFound):
        abort(404)
    if view.earmarked:
        abort(404)  # spent by its beneficiary from their own space, never at a till
    form = RedeemForm()
    if not form.request_key.data:
        form.request_key.data = uuid.uuid4().hex
    status, done = 200, None
    if form.validate_on_submit():
        try:
            money.parse_amount(form.amount.data)
            done = vouchers.redeem(unit_of_work(), current_actor(), code=view.code,
                                   amount=form.amount.data,
                                   idempotency_key=f"voucher:{form.request_key.data}")
            # A flash, not a URL parameter: a forged link cannot show "accepted".
            flash(_("Bon accepté : les Bou'Sols sont sur votre compte (opération n° "
                    "%(id)s).", id=done.entry_id), "voucher-taken")
            return redirect(url_for("merchant.voucher_redeem", code=view.code))
        except DomainError as error:
            status = refuse(form, error, "amount")
            form.request_key.data = uuid.uuid4().hex
            with unit_of_work(read_only=True) as uow:
                view = vouchers.lookup(uow.conn, view.code)
    return render_template("merchant/voucher.html", view=view, form=form,
                           status_labels=STATUS_LABELS, party=current_user.party,
                           title=_l("Bon d'aide %(code)s", code=view.code)), \
        page_status(form, status)
