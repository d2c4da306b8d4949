"""Accounting exports for the treasurer and the accountant: the FEC of a period, and
the mapping of the ledger's accounts to the association's chart of accounts (admin)."""

from __future__ import annotations

import datetime as dt
import io
import tempfile

from flask import current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Form, HiddenField, StringField
from wtforms.validators import DataRequired

from bousol.ledger.association import fec
from bousol.ledger.books.queries import KIND_LABELS
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import DomainError
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.forms import refuse

SPOOL_BYTES = 8 * 1024 * 1024  # a larger file goes to a temporary file, not memory


class MappingForm(FlaskForm):
    """One group's account: saved or set back to the default (the button says which)."""

    # No validators on the account: the ledger checks it, with a French message.
    ledger_key = HiddenField(validators=[DataRequired(_l("Groupe de comptes manquant."))])
    account_number = StringField(_l("Numéro de compte"))
    account_label = StringField(_l("Intitulé du compte"))


class PeriodForm(Form):
    """The period to export, sent by GET (a download changes nothing: no CSRF token)."""

    du = StringField(_l("Du"))
    au = StringField(_l("Au (inclus)"))


def _siren() -> str | None:
    """The configured SIREN, or None (the page says so; the download refuses)."""
    try:
        return fec.check_siren(current_app.config.get("ASSOCIATION_SIREN", ""))
    except DomainError:
        return None


def _page(mapping_form: MappingForm, period_form: PeriodForm, status: int = 200,
          edited_key: str | None = None):
    with unit_of_work(read_only=True) as uow:
        rows = fec.mappings(uow.conn)
    journals = [(code, label, [KIND_LABELS[k] for k, j in fec.KIND_JOURNALS.items()
                               if j == code and k != "reversal"])
                for code, label in fec.JOURNALS.items()]
    return render_template(
        "admin/fec.html", title=_("Comptabilité : export FEC"), rows=rows,
        mapping_form=mapping_form, period_form=period_form, edited_key=edited_key,
        journals=journals, siren=_siren(),
    ), status


def _default_period() -> PeriodForm:
    today = paris_today()
    return PeriodForm(data={"du": dt.date(today.year, 1, 1).isoformat(),
                            "au": today.isoformat()})


@bp.route("/comptabilite", methods=["GET", "POST"])
@role_required("admin")
def accounting():
    form = MappingForm()
    if request.method == "GET":
        return _page(MappingForm(formdata=None), _default_period())
    if not form.validate_on_submit():
        if "csrf_token" in form.errors:
            return _page(form, _default_period(), 400)
        return _page(form, _default_period(), 422)
    key = (form.ledger_key.data or "").strip()  # as the ledger reads it
    try:
        if request.form.get("action") == "reset":
            fec.reset_mapping(unit_of_work(), current_actor(), key)
            flash(_("Compte par défaut rétabli pour « %(group)s ».",
                    group=_(fec.GROUP_BY_KEY[key].label)), "info")
        else:
            saved = fec.set_mapping(unit_of_work(), current_actor(), key,
                                    form.account_number.data, form.account_label.data)
            flash(_("« %(group)s » : compte %(number)s — %(label)s.",
                    group=_(saved.label), number=saved.number, label=saved.account_label),
                  "info")
    except DomainError as error:  # an unknown group shows by the number (the key is hidden)
        status = refuse(form, error, "account_number", fields={"ledger_key": "account_number"})
        return _page(form, _default_period(), status,
                     edited_key=key if key in fec.GROUP_BY_KEY else None)
    return redirect(url_for("admin.accounting") + "#correspondance")


@bp.route("/comptabilite/fec")
@role_required("admin")
def accounting_fec():
    period_form = PeriodForm(request.args)
    try:
        period = fec.parse_period(period_form.du.data, period_form.au.data)
        siren = fec.check_siren(current_app.config.get("ASSOCIATION_SIREN", ""))
    except DomainError as error:
        status = refuse(period_form, error, "au", fields={"date_from": "du", "date_to": "au"})
        return _page(MappingForm(formdata=None), period_form, status)
    # Written from one snapshot of the books into a spooled file: a long period does
    # not sit in memory, and no transaction stays open while the file is sent.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # send_file closes it
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    with unit_of_work(read_only=True) as uow:
        fec.write(uow.conn, period, text)
    text.flush()
    text.detach()
    spool.seek(0)
    response = send_file(spool, mimetype="text/plain", as_attachment=True,
                         download_name=fec.filename(siren, period), max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
