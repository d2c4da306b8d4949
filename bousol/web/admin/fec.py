"""Accounting exports for the treasurer and the accountant: the FEC of a period
(streamed), the FEC of a whole year prepared in the background and downloaded once
ready, and the mapping of the ledger's accounts to the association's chart of accounts
(admin)."""

from __future__ import annotations

import datetime as dt

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import Form, HiddenField, StringField
from wtforms.validators import DataRequired

from bousol.ledger.association import export_jobs, fec
from bousol.ledger.books.queries import KIND_LABELS
from bousol.ledger.kernel import jobs
from bousol.ledger.kernel.clock import paris_today
from bousol.ledger.kernel.errors import DomainError
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.admin.views import bp
from bousol.web.forms import refuse


class MappingForm(FlaskForm):
    """One group's account: saved or set back to the default (the button says which)."""

    # No validators on the account: the ledger checks it, with a French message.
    ledger_key = HiddenField(validators=[DataRequired(_l("Groupe de comptes manquant."))])
    account_number = StringField(_l("Numéro de compte"))
    account_label = StringField(_l("Intitulé du compte"))


class YearForm(FlaskForm):
    """The year whose FEC the worker prepares (a POST: it queues a job)."""

    annee = StringField(_l("Année"))


# The state of a job, as the page says it.
JOB_STATUS_LABELS = {
    jobs.Status.QUEUED: _l("En attente"),
    jobs.Status.RUNNING: _l("En préparation"),
    jobs.Status.DONE: _l("Prêt"),
    jobs.Status.FAILED: _l("Échec"),
}


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
          edited_key: str | None = None, year_form: YearForm | None = None):
    with unit_of_work(read_only=True) as uow:
        rows = fec.mappings(uow.conn)
        prepared = export_jobs.recent(uow.conn, current_actor())
    if year_form is None:
        year_form = YearForm(formdata=None, data={"annee": str(paris_today().year)})
    journals = [(code, label, [KIND_LABELS[k] for k, j in fec.KIND_JOURNALS.items()
                               if j == code and k != "reversal"])
                for code, label in fec.JOURNALS.items()]
    return render_template(
        "admin/fec.html", title=_("Comptabilité : export FEC"), rows=rows,
        mapping_form=mapping_form, period_form=period_form, edited_key=edited_key,
        journals=journals, siren=_siren(), year_form=year_form, prepared=prepared,
        job_labels=JOB_STATUS_LABELS, this_year=paris_today().year,
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
    # Streamed from one read-only snapshot of the books, a batch of entries at a time:
    # the first bytes leave at once and memory holds one batch, whatever the period.
    # The snapshot's transaction stays open while the file is sent. A failure half-way
    # (the status is already sent) ends the chunked response without its last chunk:
    # the browser reports the download as failed instead of keeping a short file.

    def chunks():
        with unit_of_work(read_only=True, stale_ok=True) as uow:  # an export: the replica
            for chunk in fec.stream(uow.conn, period):
                yield chunk.encode("utf-8")

    response = Response(stream_with_context(chunks()), mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{fec.filename(siren, period)}"')
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass the chunks on at once
    return response


@bp.route("/comptabilite/fichiers", methods=["POST"])
@role_required("admin")
def accounting_prepare():
    """Queue the FEC of a year for the worker (once: asking again while it waits or
    runs shows the same job)."""
    form = YearForm()
    period_form = _default_period()
    if not form.validate_on_submit():
        return _page(MappingForm(formdata=None), period_form, 400, year_form=form)
    try:
        job, created = export_jobs.request_year(
            unit_of_work(), current_actor(), form.annee.data,
            current_app.config.get("ASSOCIATION_SIREN", ""))
    except DomainError as error:
        status = refuse(form, error, "annee", fields={"year": "annee"})
        return _page(MappingForm(formdata=None), period_form, status, year_form=form)
    year = job.period.start.year
    if created:
        flash(_("Le fichier de l'année %(year)s est en préparation : il apparaîtra "
                "ci-dessous, prêt à télécharger.", year=year), "info")
    else:
        flash(_("Le fichier de l'année %(year)s est déjà en préparation (tâche n° %(id)s).",
                year=year, id=job.job.id), "info")
    return redirect(url_for("admin.accounting") + "#fichiers")


@bp.route("/comptabilite/fichiers/<int:job_id>")
@role_required("admin")
def accounting_download(job_id: int):
    """A prepared file: only a finished job asked by the same role; the file is found
    by the job's id, never by a name the request carries."""
    with unit_of_work(read_only=True) as uow:
        try:
            found = export_jobs.downloadable(uow.conn, current_actor(), job_id)
        except DomainError as error:
            abort(error.http_status if 400 <= error.http_status < 500 else 404)
    path = jobs.output_path(current_app.config["EXPORTS_DIR"], found.job.output_name)
    if path is None:  # the file was removed from the folder
        abort(410)
    response = send_file(path, mimetype="text/plain", as_attachment=True,
                         download_name=found.job.download_name or path.name, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response
