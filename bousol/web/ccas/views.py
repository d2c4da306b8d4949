"""The CCAS's pages: its own balance, aid programmes, granting vouchers (one, or a batch
from a CSV file with a preview), cancelling, beneficiaries (export and erasure).

A thin layer over :mod:`bousol.ledger.ccas.vouchers` (the rules) and
:mod:`bousol.ledger.ccas.ccas_queries` (the reads): a CCAS sees its own rows only, anything
else is a 404.
"""

from __future__ import annotations

import datetime as dt
import json
import string
import uuid

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bousol.ledger.access.parties import normalise_party_code
from bousol.ledger.ccas import ccas_queries, voucher_batches, vouchers
from bousol.ledger.kernel import csv_text, money
from bousol.ledger.kernel.clock import as_utc, paris_today
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import Filiere, utcnow
from bousol.web import current_actor, form_status, role_required, unit_of_work
from bousol.web.formatting import filiere_label, ngettext
from bousol.web.forms import FieldMap, check_field, flash_refusal, or_404, page_status, refuse

bp = Blueprint("ccas", __name__, url_prefix="/ccas")

STATUS_LABELS = {
    "open": _l("Ouvert"),
    "redeemed": _l("Utilisé"),
    "expired": _l("Expiré"),
    "cancelled": _l("Annulé"),
}
CSV_MAX_BYTES = 512 * 1024  # 2 000 lines of "reference;amount;name" fit many times over
REQUIRED = _l("Obligatoire.")
SAFE_FILENAME = frozenset(string.ascii_letters + string.digits + "-_")


# ---------------------------------------------------------------- forms


class ProgrammeForm(FlaskForm):
    name = StringField(_l("Nom du programme"),
                       validators=[DataRequired(REQUIRED), Length(max=200)])
    budget = StringField(_l("Budget en euros"), validators=[DataRequired(REQUIRED),
                                                            Length(max=20)])
    starts_on = StringField(_l("Début (jj/mm/aaaa)"),
                            validators=[DataRequired(REQUIRED), Length(max=10)])
    ends_on = StringField(_l("Fin (jj/mm/aaaa)"),
                          validators=[DataRequired(REQUIRED), Length(max=10)])
    filieres = SelectMultipleField(_l("Filières où les bons s'utilisent"), choices=[],
                                   validate_choice=False)
    default_validity_days = StringField(_l("Validité des bons, en jours"), default="90",
                                        validators=[DataRequired(REQUIRED), Length(max=4)])
    multi_use = BooleanField(_l("Un bon peut être dépensé en plusieurs fois"), default=True)
    request_key = HiddenField()  # made with the page: a second post replays the first


class GrantForm(FlaskForm):
    programme = SelectField(_l("Financé par"), choices=[], validate_choice=False)
    beneficiary_ref = StringField(_l("Référence du bénéficiaire"),
                                  validators=[DataRequired(REQUIRED),
                                              Length(max=vouchers.REF_MAX)])
    beneficiary_name = StringField(_l("Nom (facultatif, visible du CCAS seulement)"),
                                   validators=[Length(max=vouchers.NAME_MAX)])
    amount = StringField(_l("Montant en Bou'Sols"), validators=[DataRequired(REQUIRED),
                                                               Length(max=20)])
    valid_until = StringField(_l("Valable jusqu'au (facultatif, jj/mm/aaaa)"),
                              validators=[Length(max=10)])
    filieres = SelectMultipleField(_l("Filières (facultatif : celles du programme)"),
                                   choices=[], validate_choice=False)
    soliste_code = StringField(_l("Code soliste (facultatif : bon crédité sur son compte)"),
                               validators=[Length(max=16)])
    request_key = HiddenField()


class BatchUploadForm(FlaskForm):
    csv_file = FileField(_l("Fichier CSV (référence ; montant ; nom facultatif)"))
    encoding = SelectField(_l("Encodage du fichier"), choices=[
        SelectChoice(csv_text.AUTO, _l("Détection automatique (UTF-8 ou Windows-1252)")),
        SelectChoice(csv_text.UTF8, _l("UTF-8 (« CSV UTF-8 »)")),
        SelectChoice(csv_text.CP1252,
                     _l("Windows-1252 (« CSV (séparateur : point-virgule) » d'Excel)")),
    ], default=csv_text.AUTO)
    programme = SelectField(_l("Financé par"), choices=[], validate_choice=False)
    valid_until = StringField(_l("Valable jusqu'au (facultatif, jj/mm/aaaa)"),
                              validators=[Length(max=10)])


class BatchConfirmForm(FlaskForm):
    csv_text = HiddenField()
    programme = HiddenField()
    valid_until = HiddenField()
    request_key = HiddenField()  # made with the preview: a second confirm replays the lot


class CancelForm(FlaskForm):
    confirmed = HiddenField()


class EraseForm(FlaskForm):
    confirm = BooleanField(_l("Je confirme : effacer la référence et le nom de ce "
                              "bénéficiaire (les bons restent, anonymes)"),
                           validators=[DataRequired(_l("Cochez la case pour confirmer "
                                                       "l'effacement."))])


# ---------------------------------------------------------------- helpers


def _party_id() -> int:
    return current_user.party_id


def _filiere_choices() -> list[tuple[str, str]]:
    return [(f.value, filiere_label(f.value)) for f in Filiere]


def _programme_choices(conn) -> list[tuple[str, str]]:
    own = vouchers.programmes(conn, _party_id())
    return [("", _("Compte du CCAS (hors programme)"))] + [
        (str(p.id), f"{p.name} (n° {p.id})") for p in own]


def _check(form, name: str, parse) -> bool:
    """Run a parser on the field's text; its refusal shows by the field. True if bad."""
    return not check_field(form, name, parse)


def _optional_date(form, name: str) -> bool:
    if not (form[name].data or "").strip():
        return False
    return _check(form, name, lambda v: vouchers.parse_date(v, _("Validité")))


def _programme_id(text: str | None) -> int | None:
    """The select's value: "" for the CCAS's own account, else a programme id (an
    unknown one is the ledger's not_found, shown by the field)."""
    text = (text or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return 0  # names no programme: the ledger says so
    return int(text)


def _own_programme(programme_id: int):
    with unit_of_work(read_only=True) as uow:
        found = ccas_queries.own_programme(uow.conn, _party_id(), programme_id)
    if found is None:
        abort(404)
    return found


def _new_key(form) -> None:
    """A fresh request key, made with the page (or after a refusal, which is remembered
    under its key: the corrected form must not replay it)."""
    form.request_key.data = uuid.uuid4().hex


def _idempotency_key(form, prefix: str) -> str | None:
    """The posted form's key, for the ledger; the pages send 32 hex digits. A post with
    none (a script) is not deduplicated; a forged one is a bad request."""
    key = (form.request_key.data or "").strip()
    if not key:
        return None
    if len(key) != 32 or any(c not in string.hexdigits for c in key):
        abort(400)
    return f"{prefix}:{key}"


RESENT = _l("Ce formulaire a déjà été envoyé avec d'autres valeurs (retour en arrière "
            "puis nouvel envoi ?) : rien de plus n'a été fait. Vérifiez ce qui a été "
            "enregistré, puis envoyez ce formulaire-ci si besoin.")


def _render(template: str, status: int = 200, **context):
    return render_template(template, status_labels=STATUS_LABELS, **context), status


# ---------------------------------------------------------------- home, programmes


@bp.route("/")
@role_required("ccas")
def home():
    party = current_user.party
    with unit_of_work(read_only=True) as uow:
        conn = uow.conn
        balance = ccas_queries.main_balance(conn, party.id)
        rows = [(p, vouchers.figures(conn, p.id))
                for p in vouchers.programmes(conn, party.id)]
        latest = vouchers.ccas_vouchers(conn, current_actor(), limit=10)
        batches = ccas_queries.batches(conn, party.id, limit=5)
    return _render("ccas/home.html", party=party, balance=balance, programmes=rows,
                   latest=latest, batches=batches,
                   title=_l("Espace CCAS"))


@bp.route("/programmes")
@role_required("ccas")
def programmes():
    with unit_of_work(read_only=True) as uow:
        rows = [(p, vouchers.figures(uow.conn, p.id))
                for p in vouchers.programmes(uow.conn, _party_id())]
    return _render("ccas/programmes.html", programmes=rows, title=_l("Programmes d'aide"))


@bp.route("/programmes/nouveau", methods=["GET", "POST"])
@role_required("ccas")
def new_programme():
    form = ProgrammeForm()
    form.filieres.choices = _filiere_choices()
    if not form.request_key.data:
        _new_key(form)
    status = 200
    if form.validate_on_submit():
        bad = _check(form, "budget", money.parse_amount)
        bad |= _check(form, "starts_on", lambda v: vouchers.parse_date(v, _("Début")))
        bad |= _check(form, "ends_on", lambda v: vouchers.parse_date(v, _("Fin")))
        bad |= _check(form, "filieres", vouchers.parse_filieres)
        if not bad:
            try:
                created = vouchers.create_programme(
                    unit_of_work(), current_actor(), name=form.name.data,
                    budget=form.budget.data, starts_on=form.starts_on.data,
                    ends_on=form.ends_on.data, filieres=form.filieres.data or None,
                    default_validity_days=form.default_validity_days.data.strip(),
                    multi_use=form.multi_use.data,
                    idempotency_key=_idempotency_key(form, "ccas-programme"))
                flash(_("Programme créé. Faites-le financer au comptoir de la banque SOL "
                        "avant d'attribuer des bons."), "info")
                return redirect(url_for("ccas.programme", programme_id=created.id))
            except DomainError as error:
                status = refuse(form, error, "name", fields={"invalid_amount": "budget"},
                                message=_resent_or(error))
                _new_key(form)
    return _render("ccas/programme_form.html", page_status(form, status), form=form,
                   title=_l("Nouveau programme d'aide"))


def _resent_or(error: DomainError) -> str | None:
    """The words for a form sent a second time with other values (else the ledger's)."""
    return str(RESENT) if error.code == "idempotency_conflict" else None


@bp.route("/programmes/<int:programme_id>")
@role_required("ccas")
def programme(programme_id: int):
    prog = _own_programme(programme_id)
    with unit_of_work(read_only=True) as uow:
        figures = vouchers.figures(uow.conn, prog.id)
        lines = vouchers.ccas_vouchers(uow.conn, current_actor(), programme_id=prog.id,
                                       limit=500)
        batches = ccas_queries.batches(uow.conn, _party_id(), programme_id=prog.id,
                                       limit=50)
    printable = [line.view.id for line in lines
                 if line.view.status == "open" and not line.view.earmarked]
    return _render("ccas/programme.html", prog=prog, figures=figures, lines=lines,
                   batches=batches, printable=printable, cancel_form=CancelForm(),
                   title=prog.name)


# ---------------------------------------------------------------- granting


# Where a refusal of vouchers.grant shows, when it names no field of the form (the
# others: on top of the form).
GRANT_FIELDS: FieldMap = {
    "invalid_amount": "amount", "insufficient_funds": "amount", "invalid_date": "valid_until",
    "not_found": "programme", "unknown_party": "soliste_code", "invalid_input": "filieres",
    "idempotency_conflict": None}


@bp.route("/bons/nouveau", methods=["GET", "POST"])
@role_required("ccas")
def grant():
    form = GrantForm()
    with unit_of_work(read_only=True) as uow:
        form.programme.choices = _programme_choices(uow.conn)
    form.filieres.choices = _filiere_choices()
    if request.method == "GET" and request.args.get("programme", "").isdigit():
        form.programme.data = request.args["programme"]
    if not form.request_key.data:
        _new_key(form)
    status = 200
    if form.validate_on_submit():
        bad = _check(form, "beneficiary_ref", vouchers.parse_ref)
        bad |= _check(form, "amount", money.parse_amount)
        bad |= _optional_date(form, "valid_until")
        bad |= _check(form, "filieres", vouchers.parse_filieres)
        if not bad:
            try:
                view = vouchers.grant(
                    unit_of_work(), current_actor(),
                    beneficiary_ref=form.beneficiary_ref.data, amount=form.amount.data,
                    programme_id=_programme_id(form.programme.data),
                    valid_until=(form.valid_until.data or "").strip() or None,
                    filieres=form.filieres.data or None,
                    beneficiary_name=(form.beneficiary_name.data or "").strip() or None,
                    soliste_code=normalise_party_code(form.soliste_code.data) or None,
                    idempotency_key=_idempotency_key(form, "ccas-grant"))
                flash(_("Bon d'aide attribué."), "info")
                return redirect(url_for("ccas.voucher", code=view.code))
            except DomainError as error:
                status = refuse(form, error, fields=GRANT_FIELDS, message=_resent_or(error))
                _new_key(form)
    return _render("ccas/grant.html", page_status(form, status), form=form,
                   title=_l("Attribuer un bon d'aide"))



# ---------------------------------------------------------------- CSV batches


def _upload_text(form: BatchUploadForm) -> str | None:
    """The uploaded file's text, or None with the reason by the file field."""
    upload = form.csv_file.data
    if upload is None or not getattr(upload, "filename", ""):
        form.csv_file.errors.append(_("Choisissez un fichier CSV."))
        return None
    data = upload.read(CSV_MAX_BYTES + 1)
    if len(data) > CSV_MAX_BYTES:
        form.csv_file.errors.append(_("Fichier trop gros : %(size)s Ko au plus.",
                                      size=CSV_MAX_BYTES // 1024))
        return None
    try:
        text, _used = csv_text.decode(data, form.encoding.data or csv_text.AUTO)
    except csv_text.CsvEncodingError as error:
        form.csv_file.errors.append(str(ENCODING_ERRORS[error.reason]))
        return None
    return text


# csv_text's refusals, in the page's language.
ENCODING_ERRORS = {
    csv_text.NOT_UTF8: _l("Le fichier n'est pas en UTF-8 : choisissez « Windows-1252 » ou "
                          "« Détection automatique »."),
    csv_text.NOT_CP1252: _l("Le fichier n'est pas en Windows-1252 : choisissez « UTF-8 » ou "
                            "« Détection automatique »."),
    csv_text.NEITHER: _l("Le fichier n'est ni en UTF-8 ni en Windows-1252 : enregistrez-le "
                         "en « CSV UTF-8 » ou en « CSV (séparateur : point-virgule) » depuis "
                         "votre tableur."),
    csv_text.NOT_TEXT: _l("Ce n'est pas un fichier texte CSV : enregistrez-le en « CSV "
                          "UTF-8 » ou en « CSV (séparateur : point-virgule) » depuis votre "
                          "tableur."),
}


def _preview_context(text: str, programme_id: int | None):
    with unit_of_work(read_only=True) as uow:
        if programme_id is None:
            source_name = _("Compte du CCAS (hors programme)")
            available = ccas_queries.main_balance(uow.conn, _party_id())
        else:
            prog = ccas_queries.own_programme(uow.conn, _party_id(), programme_id)
            source_name = prog.name if prog else None
            available = vouchers.figures(uow.conn, prog.id).available_cents if prog else 0
    return {"source_name": source_name, "available": available}


@bp.route("/bons/lot", methods=["GET", "POST"])
@role_required("ccas")
def batch_upload():
    form = BatchUploadForm()
    with unit_of_work(read_only=True) as uow:
        form.programme.choices = _programme_choices(uow.conn)
    if request.method == "GET" and request.args.get("programme", "").isdigit():
        form.programme.data = request.args["programme"]
    if form.validate_on_submit():
        text = _upload_text(form)
        bad = text is None
        bad |= _optional_date(form, "valid_until")
        programme_id = _programme_id(form.programme.data)
        if programme_id is not None:
            with unit_of_work(read_only=True) as uow:
                if ccas_queries.own_programme(uow.conn, _party_id(), programme_id) is None:
                    form.programme.errors.append(_("Programme d'aide introuvable."))
                    bad = True
        if not bad:
            try:
                preview = voucher_batches.preview_batch(text)
            except DomainError as error:  # the file as a whole
                refuse(form, error, fields={DomainError: "csv_file"})
            else:
                confirm = BatchConfirmForm(formdata=None, csv_text=text,
                                           programme=form.programme.data or "",
                                           valid_until=(form.valid_until.data or "").strip(),
                                           request_key=uuid.uuid4().hex)
                return _render("ccas/batch_preview.html",
                               200 if preview.ok else 422, preview=preview, confirm=confirm,
                               error=None, title=_l("Lot de bons : vérification"),
                               valid_until=confirm.valid_until.data,
                               **_preview_context(text, programme_id))
    return _render("ccas/batch_upload.html", page_status(form), form=form,
                   title=_l("Attribuer un lot de bons (CSV)"))


@bp.route("/bons/lot/confirmer", methods=["POST"])
@role_required("ccas")
def batch_confirm():
    confirm = BatchConfirmForm()
    if not confirm.validate_on_submit():
        abort(400)
    text = confirm.csv_text.data or ""
    programme_id = _programme_id(confirm.programme.data)
    valid_until = (confirm.valid_until.data or "").strip() or None
    key = _idempotency_key(confirm, "ccas-batch")
    try:
        result = voucher_batches.grant_batch(unit_of_work(), current_actor(), text=text,
                                      programme_id=programme_id, valid_until=valid_until,
                                      idempotency_key=key)
    except DomainError as error:
        try:
            preview = voucher_batches.preview_batch(text)
        except DomainError:
            abort(400)  # the page never sends this: a hand-made request
        _new_key(confirm)  # the refusal is remembered under the old key
        message = str(RESENT) if error.code == "idempotency_conflict" else error.message
        return _render("ccas/batch_preview.html", form_status(error), preview=preview,
                       confirm=confirm, error=message, valid_until=valid_until,
                       title=_l("Lot de bons : vérification"),
                       **_preview_context(text, programme_id))
    flash(ngettext("%(num)d bon attribué (lot n° %(batch)s).",
                   "%(num)d bons attribués (lot n° %(batch)s).", len(result.voucher_ids),
                   batch=result.batch_id), "info")
    return redirect(url_for("ccas.batch", batch_id=result.batch_id))


@bp.route("/lots/<int:batch_id>")
@role_required("ccas")
def batch(batch_id: int):
    with unit_of_work(read_only=True) as uow:
        info = ccas_queries.batch(uow.conn, _party_id(), batch_id)
        lines = ccas_queries.batch_vouchers(uow.conn, _party_id(), batch_id) if info else []
    if info is None:
        abort(404)
    return _render("ccas/batch.html", batch=info, lines=lines, cancel_form=CancelForm(),
                   title=_l("Lot de bons n° %(id)s", id=info.id))


# ---------------------------------------------------------------- one voucher


def _own_voucher(code: str) -> ccas_queries.VoucherDetail:
    with unit_of_work(read_only=True) as uow:
        found = ccas_queries.voucher_by_code(uow.conn, _party_id(), code)
    if found is None:
        abort(404)
    return found


@bp.route("/bons/<code>")
@role_required("ccas")
def voucher(code: str):
    detail = _own_voucher(code)
    if code != detail.view.code:  # a forgiving spelling: the page has one address
        return redirect(url_for("ccas.voucher", code=detail.view.code))
    with unit_of_work(read_only=True) as uow:
        spent = ccas_queries.redemptions(uow.conn, detail.view.id)
    return _render("ccas/voucher.html", detail=detail, v=detail.view, spent=spent,
                   cancel_form=CancelForm(), title=_l("Bon d'aide %(code)s",
                                                      code=detail.view.code))


@bp.route("/bons/<code>/annuler", methods=["POST"])
@role_required("ccas")
def cancel(code: str):
    detail = _own_voucher(code)
    form = CancelForm()
    if not form.validate_on_submit():
        abort(400)
    if form.confirmed.data != "1":  # first the question, then the cancellation
        ask = CancelForm(formdata=None, confirmed="1")
        return _render("ccas/cancel.html", detail=detail, v=detail.view, form=ask,
                       title=_l("Annuler le bon %(code)s", code=detail.view.code))
    try:
        vouchers.cancel(unit_of_work(), current_actor(), code=detail.view.code)
        flash(_("Bon annulé : ce qui restait est revenu à son programme."), "info")
    except DomainError as error:
        flash_refusal(error)
    return redirect(url_for("ccas.voucher", code=detail.view.code))


# ---------------------------------------------------------------- beneficiaries


@bp.route("/beneficiaires")
@role_required("ccas")
def beneficiaries():
    query = (request.args.get("ref") or "").strip()[:vouchers.REF_MAX]
    with unit_of_work(read_only=True) as uow:
        found = ccas_queries.search_beneficiaries(uow.conn, _party_id(), query or None)
    return _render("ccas/beneficiaries.html", query=query, found=found,
                   title=_l("Bénéficiaires"))


def _own_beneficiary(ref: str):
    with or_404():
        ref = vouchers.parse_ref(ref)
    with unit_of_work(read_only=True) as uow:
        found = ccas_queries.beneficiary(uow.conn, _party_id(), ref)
    if found is None:
        abort(404)
    return found


@bp.route("/beneficiaires/<path:ref>", methods=["GET", "POST"])
@role_required("ccas")
def beneficiary(ref: str):
    person = _own_beneficiary(ref)
    if request.method == "GET" and request.args.get("format") == "json":
        return _export(person.ref)
    form = EraseForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                anonymous = vouchers.erase_beneficiary(unit_of_work(), current_actor(),
                                                       person.ref)
                flash(_("Données du bénéficiaire effacées : ses bons restent, sous la "
                        "référence anonyme %(ref)s.", ref=anonymous), "info")
                return redirect(url_for("ccas.beneficiaries"))
            except DomainError as error:
                status = refuse(form, error, "confirm")
        status = page_status(form, status)
    with unit_of_work(read_only=True) as uow:
        lines = vouchers.ccas_vouchers(uow.conn, current_actor(), ref=person.ref, limit=500)
    return _render("ccas/beneficiary.html", status, person=person, lines=lines, form=form,
                   title=_l("Bénéficiaire %(ref)s", ref=person.ref))


def _export(ref: str) -> Response:
    party = current_user.party
    with unit_of_work(read_only=True) as uow:
        data = vouchers.export_beneficiary(uow.conn, current_actor(), ref)
    body = {
        "ccas": {"code": party.code, "name": party.name},
        "exported_at": utcnow().isoformat(),
        "reference": data.ref,
        "name": data.name,
        "created_at": _iso(data.created_at),
        "vouchers": data.vouchers,
    }
    safe = "".join(c if c in SAFE_FILENAME else "_" for c in data.ref)
    response = Response(json.dumps(body, ensure_ascii=False, indent=2) + "\n",
                        mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="beneficiaire-{safe}-{paris_today():%Y%m%d}.json"')
    response.headers["Cache-Control"] = "no-store"
    return response


def _iso(value: dt.datetime) -> str:
    return as_utc(value).isoformat()
