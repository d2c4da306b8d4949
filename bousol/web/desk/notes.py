"""The desk's paper notes: the stock by place, series and printer's deliveries, moves
between the vault and the desks, deposits by prestataires, reactivation of expired
notes. Routes of the desk blueprint (same actor: the bank's clerk)."""

from __future__ import annotations

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from bousol.ledger.books import operations, queries
from bousol.ledger.desk import note_operations, notes
from bousol.ledger.kernel import money
from bousol.ledger.kernel.errors import DomainError
from bousol.ledger.models import NOTE_DENOMINATIONS
from bousol.web import current_actor, role_required, unit_of_work
from bousol.web.desk.views import RECONVERSION_KINDS, TENDER_LABELS, _member, bp
from bousol.web.formatting import fr_money, ngettext
from bousol.web.forms import refuse

PLACE_LABELS = {
    "printed": _l("Livrés par l'imprimeur"),
    "vault": _l("Coffre"),
    "desk": _l("Guichet"),
    "circulation": _l("En circulation"),
    "returned": _l("Rendus"),
    "destroyed": _l("Détruits"),
}
MOVE_TARGETS = {"vault": _l("Coffre"), "desk": _l("Guichet"), "destroyed": _l("Destruction")}
SERIALS_HELP = _l("Un numéro par ligne ou séparés par des espaces ; plages : "
                  "A26-000101..000120.")


class SeriesForm(FlaskForm):
    code = StringField(_l("Code de la série"), validators=[DataRequired(), Length(max=6)])
    printed_on = StringField(_l("Date d'impression (JJ/MM/AAAA)"),
                             validators=[DataRequired(), Length(max=10)])
    valid_until = StringField(_l("Valable jusqu'au (JJ/MM/AAAA)"),
                              validators=[DataRequired(), Length(max=10)])


class DeliveryForm(FlaskForm):
    series_code = SelectField(_l("Série"), validators=[DataRequired()], choices=[])
    denomination = SelectField(
        _l("Valeur"), choices=[SelectChoice(str(v), f"{v} B") for v in NOTE_DENOMINATIONS],
        validators=[DataRequired()])
    first = StringField(_l("Premier numéro"), validators=[DataRequired(), Length(max=6)])
    last = StringField(_l("Dernier numéro"), validators=[DataRequired(), Length(max=6)])


class MoveForm(FlaskForm):
    serials = TextAreaField(_l("Billets à déplacer"),
                            validators=[DataRequired(), Length(max=20000)])
    to_place = SelectField(_l("Vers"),
                           choices=[SelectChoice(k, v) for k, v in MOVE_TARGETS.items()],
                           validators=[DataRequired()])
    to_desk = SelectField(_l("Guichet (si vers un guichet)"), choices=[])


class DepositForm(FlaskForm):
    serials = TextAreaField(_l("Billets déposés"), validators=[DataRequired(),
                                                               Length(max=20000)])
    mode = RadioField(
        _l("Le prestataire veut"),
        choices=[SelectChoice("credit", _l("Créditer son compte en Bou'Sols")),
                 SelectChoice("reconvert", _l("Reconvertir en euros (virement)"))],
        default="credit", validators=[DataRequired()])
    request_key = HiddenField()


class ReactivationForm(FlaskForm):
    serials = TextAreaField(_l("Billets périmés"), validators=[DataRequired(),
                                                              Length(max=20000)])
    mode = RadioField(
        _l("Réactivation"),
        choices=[SelectChoice("stamp", _l("Tamponner une nouvelle date sur les billets")),
                 SelectChoice("replace", _l("Échanger contre des billets valables"))],
        default="stamp", validators=[DataRequired()])
    tender = RadioField(
        _l("Frais payés par"),
        choices=[SelectChoice(value, label) for value, label in TENDER_LABELS.items()],
        default="cash", validators=[DataRequired()])
    request_key = HiddenField()


def _stock_page(status: int = 200, **forms):
    with unit_of_work(read_only=True) as uow:
        lines = notes.stock(uow.conn)
        series = notes.series_list(uow.conn)
        desks = notes.desks(uow.conn)
        in_circulation = notes.circulation_face_cents(uow.conn)
        ledger_notes = queries.money_supply(uow.conn).bsol_notes
        serial = request.args.get("serial", "").strip()[:20]
        found, moves = notes.note_history(uow.conn, serial) if serial else (None, [])
    table: dict[tuple[str, str | None], dict[int, int]] = {}
    expired: dict[tuple[str, str | None], int] = {}
    for line in lines:
        key = (line.place, line.desk_code)
        table.setdefault(key, {})[line.denomination] = line.count
        expired[key] = expired.get(key, 0) + line.expired
    faces = {key: 100 * sum(v * n for v, n in counts.items()) for key, counts in table.items()}
    series_form = forms.get("series_form") or SeriesForm(formdata=None)
    delivery_form = forms.get("delivery_form") or DeliveryForm(formdata=None)
    move_form = forms.get("move_form") or MoveForm(formdata=None)
    delivery_form.series_code.choices = [SelectChoice(s.code, s.code) for s in series]
    move_form.to_desk.choices = [SelectChoice(d.code, f"{d.code} — {d.name}") for d in desks]
    return render_template(
        "desk/notes.html", title=_("Billets"), table=table, expired=expired, faces=faces,
        denominations=sorted(NOTE_DENOMINATIONS, reverse=True), places=PLACE_LABELS,
        series=series, in_circulation=in_circulation, ledger_notes=ledger_notes,
        serial=serial, found=found, moves=moves, series_form=series_form,
        delivery_form=delivery_form, move_form=move_form, serials_help=SERIALS_HELP,
    ), status


@bp.route("/billets")
@role_required("bank")
def notes_stock():
    return _stock_page()


@bp.route("/billets/serie", methods=["POST"])
@role_required("bank")
def notes_series():
    form = SeriesForm()
    if form.validate_on_submit():
        try:
            code = notes.register_series(unit_of_work(), current_actor(), code=form.code.data,
                                         printed_on=form.printed_on.data,
                                         valid_until=form.valid_until.data)
        except DomainError as error:
            refuse(form, error, "code")
        else:
            flash(_("Série %(code)s enregistrée.", code=code), "info")
            return redirect(url_for("desk.notes_stock"))
    return _stock_page(422, series_form=form)


@bp.route("/billets/livraison", methods=["POST"])
@role_required("bank")
def notes_delivery():
    form = DeliveryForm()
    with unit_of_work(read_only=True) as uow:
        form.series_code.choices = [SelectChoice(s.code, s.code)
                                    for s in notes.series_list(uow.conn)]
    if form.validate_on_submit():
        try:
            result = notes.register_delivery(
                unit_of_work(), current_actor(), series_code=form.series_code.data,
                denomination=form.denomination.data, first=form.first.data,
                last=form.last.data)
        except DomainError as error:
            refuse(form, error, "first")
        else:
            flash(ngettext("%(num)d billet de %(value)s B enregistré (%(first)s à %(last)s).",
                           "%(num)d billets de %(value)s B enregistrés (%(first)s à %(last)s).",
                           result.count, value=result.denomination,
                    first=result.first_serial, last=result.last_serial), "info")
            return redirect(url_for("desk.notes_stock"))
    return _stock_page(422, delivery_form=form)


@bp.route("/billets/mouvement", methods=["POST"])
@role_required("bank")
def notes_move():
    form = MoveForm()
    with unit_of_work(read_only=True) as uow:
        form.to_desk.choices = [SelectChoice(d.code, d.code) for d in notes.desks(uow.conn)]
    if form.validate_on_submit():
        try:
            result = notes.move(unit_of_work(), current_actor(), serials=form.serials.data,
                                to_place=form.to_place.data,
                                to_desk=form.to_desk.data if form.to_place.data == "desk"
                                else None)
        except DomainError as error:
            refuse(form, error, "serials")
        else:
            flash(ngettext("%(num)d billet déplacé (%(face)s).",
                           "%(num)d billets déplacés (%(face)s).", result.count,
                           face=fr_money(result.face_cents, "BSOL")), "info")
            return redirect(url_for("desk.notes_stock"))
    return _stock_page(422, move_form=form)


@bp.route("/billets/depot/<code>", methods=["GET", "POST"])
@role_required("bank")
def notes_deposit(code: str):
    member = _member(code, RECONVERSION_KINDS)
    form = DepositForm()
    title = _("Dépôt de billets")

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/notes_deposit.html", title=title, member=member,
                               form=form, step=step, serials_help=SERIALS_HELP,
                               **extra), status

    if not form.validate_on_submit():
        return page("enter", 422 if form.errors else 200)
    if "confirm" not in request.form:
        try:
            with unit_of_work(read_only=True) as uow:
                preview = note_operations.preview_deposit(uow.conn, form.serials.data)
                fee_cents = 0
                if form.mode.data == "reconvert":
                    fee_cents = money.fee_for(preview["face_cents"],
                                              operations.reconversion_fee_bp(uow.conn))
        except DomainError as error:
            refuse(form, error, "serials")
            return page("enter", error.http_status)
        form.request_key.data = uuid.uuid4().hex
        return page("confirm", preview=preview, fee_cents=fee_cents)
    try:
        result = note_operations.deposit(unit_of_work(), current_actor(),
                                         prestataire_code=member.code,
                                         serials=form.serials.data, mode=form.mode.data,
                                         idempotency_key=form.request_key.data or None)
    except DomainError as error:
        refuse(form, error, "serials")
        return page("enter", error.http_status)
    if result.mode == "reconvert":
        return redirect(url_for("desk.receipt", entry_id=result.entry_id))
    return redirect(url_for("desk.notes_receipt", entry_id=result.entry_id))


@bp.route("/billets/reactivation", methods=["GET", "POST"])
@role_required("bank")
def notes_reactivation():
    form = ReactivationForm()
    title = _("Réactivation de billets périmés")

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/notes_reactivation.html", title=title, form=form,
                               step=step, serials_help=SERIALS_HELP,
                               tender_label=TENDER_LABELS.get(form.tender.data, ""),
                               **extra), status

    if not form.validate_on_submit():
        return page("enter", 422 if form.errors else 200)
    if "confirm" not in request.form:
        try:
            with unit_of_work(read_only=True) as uow:
                preview = note_operations.preview_reactivation(uow.conn, form.serials.data)
        except DomainError as error:
            refuse(form, error, "serials")
            return page("enter", 422)
        form.request_key.data = uuid.uuid4().hex
        return page("confirm", found=preview["notes"], face_cents=preview["face_cents"],
                    fee_cents=preview["fee_cents"])
    try:
        result = note_operations.reactivate(unit_of_work(), current_actor(),
                                            serials=form.serials.data,
                                            tender=form.tender.data, mode=form.mode.data,
                                            idempotency_key=form.request_key.data or None)
    except DomainError as error:
        refuse(form, error, "serials")
        return page("enter", error.http_status)
    return redirect(url_for("desk.notes_receipt", entry_id=result.entry_id))


@bp.route("/billets/recu/<int:entry_id>")
@role_required("bank", "admin")
def notes_receipt(entry_id: int):
    """The slip of a deposit credited to an account, or of a reactivation."""
    with unit_of_work(read_only=True) as uow:
        slip = queries.notes_slip(uow.conn, entry_id)
        handed = notes.entry_notes(uow.conn, entry_id, "circulation") if slip else []
        taken = notes.entry_notes(uow.conn, entry_id, "returned") if slip else []
    if slip is None:
        abort(404)
    return render_template("desk/notes_receipt.html", title=_("Bordereau de billets"),
                           slip=slip, handed=handed, taken=taken, tenders=TENDER_LABELS)
