"""The exchange desk of the banque SOL: find a member, exchange euros for Bou'Sols
(shown before it is confirmed), print the receipt."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from bousol.ledger.access import first_login
from bousol.ledger.books import operations, queries
from bousol.ledger.ccas import vouchers
from bousol.ledger.desk import (
    bonus,
    closing,
    exchange_approvals,
    iban_changes,
    members,
    note_operations,
    notes,
    payouts,
)
from bousol.ledger.desk import exchange as desk_exchange
from bousol.ledger.kernel import mail, money, settings
from bousol.ledger.kernel.errors import (
    DomainError,
    NotesAboveApprovalLimit,
    NotesMismatch,
)
from bousol.ledger.models import NOTE_DENOMINATIONS
from bousol.web import current_actor, public_url, role_required, seen_cents, unit_of_work, views
from bousol.web.formatting import fr_date, fr_money
from bousol.web.forms import flash_refusal, page_status, refuse

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
    given_as = RadioField(
        _l("Bou'Sols remis"),
        choices=[SelectChoice("electronic", _l("Électronique (crédit sur le compte)")),
                 SelectChoice("notes", _l("Billets"))],
        default="electronic", validators=[DataRequired()],
    )
    # Made when the amount is shown for confirmation: a second click on "Confirmer"
    # (or a reload) replays the same request instead of exchanging twice.
    request_key = HiddenField()
    # The CCAS only: the aid programme the euros fund (empty: the CCAS's own account).
    programme = StringField(_l("Programme d'aide financé"), validators=[Length(max=12)])


# How many notes of each value, and optionally which serials (notes form only).
for _value in NOTE_DENOMINATIONS:
    setattr(ExchangeForm, f"n{_value}", StringField(
        _l("Billets de %(value)s B", value=_value), validators=[Length(max=5)]))
    setattr(ExchangeForm, f"r{_value}", StringField(
        _l("Numéros des billets de %(value)s B (facultatif)", value=_value),
        validators=[Length(max=2000)]))


def _counts(form) -> dict[int, str]:
    return {v: (getattr(form, f"n{v}").data or "").strip() for v in NOTE_DENOMINATIONS}


def _ranges(form) -> dict[int, str]:
    return {v: (getattr(form, f"r{v}").data or "").strip() for v in NOTE_DENOMINATIONS}


def _suggest(form, bousol_cents: int) -> None:
    """Fill empty counts with the fewest notes that make the Bou'Sols due."""
    left = bousol_cents // 100
    for value in sorted(NOTE_DENOMINATIONS, reverse=True):
        getattr(form, f"n{value}").data = str(left // value) if left // value else ""
        left %= value


class ReconversionForm(FlaskForm):
    bousols = StringField(_l("Bou'Sols à reconvertir"),
                          validators=[DataRequired(), Length(max=20)])
    request_key = HiddenField()  # made at the preview: a second click replays


class BankDetailsForm(FlaskForm):
    iban = StringField(_l("IBAN"), validators=[DataRequired(), Length(max=50)])
    bic = StringField(_l("BIC (facultatif)"), validators=[Length(max=20)])


class RegisterForm(FlaskForm):
    name = StringField(_l("Nom et prénom"), validators=[DataRequired(), Length(max=200)])
    phone = StringField(_l("Téléphone"), validators=[Length(max=32)])
    email = StringField(_l("Courriel"), validators=[Length(max=200)])
    address = StringField(_l("Adresse"), validators=[Length(max=300)])
    commune = StringField(_l("Commune"), validators=[Length(max=100)])
    birth_date = StringField(_l("Date de naissance (JJ/MM/AAAA, facultative)"),
                             validators=[Length(max=10)])
    charter = BooleanField(
        _l("La personne a lu et accepte la charte du Bou'Sol"),
        validators=[DataRequired(_l("L'adhésion suppose d'accepter la charte."))],
    )
    tender = RadioField(
        _l("Cotisation payée par"),
        choices=[SelectChoice(value, label) for value, label in TENDER_LABELS.items()],
        default="cash", validators=[DataRequired()],
    )
    # Made with the empty form: posting it twice (a double click, Back and resubmit)
    # registers once; the duplicate warning's "go on" carries a fresh one.
    request_key = HiddenField()


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
    similar = []
    if form.validate_on_submit():
        try:
            registration = members.register_soliste(
                unit_of_work(), current_actor(), name=form.name.data,
                charter_accepted=form.charter.data, tender=form.tender.data,
                phone=form.phone.data, email=form.email.data, address=form.address.data,
                commune=form.commune.data, birth_date=form.birth_date.data,
                idempotency_key=form.request_key.data or None,
                allow_duplicate="go_on" in request.form,
            )
        except members.PossibleDuplicate:
            with unit_of_work(read_only=True) as uow:
                similar = members.similar_solistes(
                    uow.conn, form.name.data, members.normalise_phone(form.phone.data),
                    members.parse_birth_date(form.birth_date.data, closing.business_today()))
            form.request_key.data = uuid.uuid4().hex  # "go on" is a request of its own
        except DomainError as error:
            refuse(form, error, "name")
            # The refusal is remembered under the old key (a replay answers the same);
            # the form corrected, or the day reopened, is a request of its own.
            form.request_key.data = uuid.uuid4().hex
        else:
            return _registration_sheet(registration.party_code, registration.username,
                                       registration.first_code,
                                       registration.code_expires_on,
                                       fee_cents=registration.fee_cents,
                                       until=registration.membership_until)
    if not form.is_submitted():
        form.request_key.data = uuid.uuid4().hex
    status = 409 if similar else 422 if form.errors else 200
    return render_template("desk/register.html", title=title, form=form,
                           fee_cents=int(fee), similar=similar), status


def _registration_sheet(code: str, username: str, first_code: str | None,
                        expires_on: dt.date | None, *, fee_cents: int | None = None,
                        until: dt.date | None = None):
    """The sheet handed to the new member: their code, their username and the one-time
    code to choose a password (shown in this response only: it is stored hashed; a
    replayed registration shows the sheet without it, with a button for a new one)."""
    member = _member(code, ("soliste",))
    return render_template(
        "desk/registration_sheet.html", title=_("Fiche d'adhésion"), member=member,
        username=username, first_code=first_code, expires_on=expires_on,
        fee_cents=fee_cents, until=until or member.membership_until,
        first_password_url=public_url(url_for("public.first_password")),
        new_code_form=FlaskForm())


@bp.route("/adherents/<code>/premier-code", methods=["POST"])
@role_required("bank", "admin")
def first_code(code: str):
    """A new one-time code for a soliste who has not chosen a password yet (a lost
    sheet, an expired code); the previous code stops working."""
    member = _member(code, ("soliste",))
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        issued = first_login.reissue(unit_of_work(), current_actor(), member.code)
    except DomainError as error:
        flash_refusal(error)
        return redirect(url_for("desk.exchange", code=member.code))
    return _registration_sheet(member.code, issued.username, issued.code, issued.expires_on)


class RenewalForm(FlaskForm):
    tender = RadioField(
        _l("Cotisation payée par"),
        choices=[SelectChoice(value, label) for value, label in TENDER_LABELS.items()],
        default="cash", validators=[DataRequired()],
    )
    seen_until = HiddenField()  # the validity shown: a second click cannot charge twice
    seen_fee = HiddenField()  # the fee announced: a fee changed meanwhile is not taken


@bp.route("/adherents/<code>/cotisation", methods=["GET", "POST"])
@role_required("bank")
def renewal(code: str):
    member = _member(code, ("soliste", "prestataire"))
    form = RenewalForm()
    until = member.membership_until
    with unit_of_work(read_only=True) as uow:
        fee = members.college_fee_cents(uow.conn, members.college_of(member.kind))
    back = (url_for("desk.exchange", code=member.code) if member.kind == "soliste"
            else url_for("desk.reconversion", code=member.code))
    if form.validate_on_submit():
        seen = form.seen_until.data or ""
        try:
            membership = members.renew_membership(
                unit_of_work(), current_actor(), party_code=member.code,
                tender=form.tender.data,
                seen_until=dt.date.fromisoformat(seen) if seen else None,
                seen_fee_cents=seen_cents(form.seen_fee.data))
        except ValueError:
            abort(400)
        except DomainError as error:
            flash_refusal(error)
            return redirect(back)
        flash(_("Cotisation de %(fee)s encaissée : adhésion valable jusqu'au %(until)s.",
                fee=fr_money(membership.fee_cents, "EUR"),
                until=fr_date(membership.membership_until)), "info")
        return redirect(back)
    form.seen_until.data = until.isoformat() if until else ""
    form.seen_fee.data = str(fee)
    return render_template("desk/renewal.html", title=_("Cotisation annuelle"),
                           member=member, form=form, fee_cents=fee,
                           until=until), page_status(form)


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
        fee_bp = operations.reconversion_fee_bp(uow.conn)
        bank = payouts.bank_details(uow.conn, member.code)

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/reconversion.html", title=title, member=member,
                               form=form, step=step, balances=balances, fee_bp=fee_bp,
                               bank=bank, **extra), status

    if not form.validate_on_submit():
        return page("enter", page_status(form))
    try:
        bousol_cents = money.parse_amount(form.bousols.data)
    except DomainError as error:
        return page("enter", refuse(form, error, "bousols"))
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
        refuse(form, error, "bousols")
        return page("enter", error.http_status)
    return redirect(url_for("desk.receipt", entry_id=result.entry_id))


@bp.route("/prestataire/<code>/banque", methods=["GET", "POST"])
@role_required("bank", "admin")
def bank_details(code: str):
    """Where the prestataire's reconverted euros are paid: IBAN (checked), optional BIC.
    What the desk types is a change request: it takes effect once the prestataire
    confirms it in its space, or an admin validates it (docs/duties.md)."""
    member = _member(code, RECONVERSION_KINDS)
    with unit_of_work(read_only=True) as uow:
        bank = payouts.bank_details(uow.conn, member.code)
        waiting = iban_changes.waiting(uow.conn, member.id)
    form = BankDetailsForm(data={"iban": "", "bic": ""})
    title = _("Coordonnées bancaires de %(name)s", name=member.name)
    if form.validate_on_submit():
        mailer = mail.from_config(current_app.config)
        try:
            asked = iban_changes.request_change(unit_of_work(), current_actor(), member.code,
                                                form.iban.data, form.bic.data,
                                                transport=mailer.transport)
        except DomainError as error:  # a wrong BIC by the BIC (its class says so)
            refuse(form, error, "iban")
        else:
            sent = iban_changes.deliver(unit_of_work(), mailer, asked.mail_ids)
            flash(_("Nouvel IBAN de %(name)s saisi : %(iban)s. Il s'appliquera quand le "
                    "prestataire l'aura confirmé dans son espace ou qu'un administrateur "
                    "l'aura validé.", name=member.name, iban=asked.iban_display), "info")
            if not asked.mail_ids:
                flash(_("Le prestataire n'a pas d'adresse e-mail : prévenez-le autrement."),
                      "error")
            elif sent < len(asked.mail_ids):
                flash(_("Le courriel au prestataire n'a pas pu partir (voir les courriels "
                        "envoyés) : prévenez-le autrement."), "error")
            return redirect(url_for("desk.bank_details", code=member.code))
    return render_template("desk/bank_details.html", title=title, member=member, form=form,
                           bank=bank, waiting=waiting,
                           withdraw_form=FlaskForm()), page_status(form)


@bp.route("/prestataire/<code>/banque/<int:change_id>/retirer", methods=["POST"])
@role_required("bank", "admin")
def bank_details_withdraw(code: str, change_id: int):
    """The clerk who typed a change (or an admin) withdraws it before it is confirmed."""
    member = _member(code, RECONVERSION_KINDS)
    if not FlaskForm().validate_on_submit():
        abort(400)
    with unit_of_work(read_only=True) as uow:
        change = iban_changes.get(uow.conn, change_id)
    if change is None or change.party_id != member.id:
        abort(404)
    try:
        iban_changes.cancel(unit_of_work(), current_actor(), change_id)
    except DomainError as error:
        flash_refusal(error)
    else:
        flash(_("Changement d'IBAN retiré : l'IBAN en vigueur reste inchangé."), "info")
    return redirect(url_for("desk.bank_details", code=member.code))


@bp.route("/change/<code>", methods=["GET", "POST"])
@role_required("bank")
def exchange(code: str):
    member = _member(code)
    form = ExchangeForm()
    title = _("Change euros → Bou'Sols")

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/exchange.html", title=title, member=member, form=form,
                               step=step, denominations=sorted(NOTE_DENOMINATIONS,
                                                               reverse=True),
                               **extra), status

    programmes = []
    if member.kind == "ccas":
        with unit_of_work(read_only=True) as uow:
            programmes = vouchers.programmes(uow.conn, member.id)
    form.programme.choices = programmes  # the template lists them

    if not form.validate_on_submit():
        return page("enter", page_status(form))
    try:
        euro_cents = money.parse_amount(form.euros.data)
    except DomainError as error:
        return page("enter", refuse(form, error, "euros"))
    programme = next((p for p in programmes if str(p.id) == (form.programme.data or "")),
                     None)
    if form.programme.data and programme is None:
        form.programme.errors = [_("Programme d'aide inconnu.")]
        return page("enter", 422)
    with unit_of_work(read_only=True) as uow:  # the ledger's rule (the CCAS: ccas.bonus)
        bousol_cents = bonus.for_exchange(uow.conn, member.kind, euro_cents).bousol_cents
    in_notes = form.given_as.data == "notes"
    if in_notes and programme is not None:
        form.given_as.errors = [_("Un programme d'aide se finance en Bou'Sols électroniques.")]
        return page("enter", 422)
    counts = _counts(form)
    if in_notes:
        try:
            if not any(counts.values()):
                _suggest(form, bousol_cents)
                raise NotesMismatch(_("%(due)s dus : indiquez les billets remis (une "
                                      "proposition est préremplie).",
                                      due=fr_money(bousol_cents, "BSOL")))
            counted = note_operations.check_counts(counts, bousol_cents)
        except DomainError as error:
            refuse(form, error, "given_as")
            return page("enter", 422)
    if "confirm" not in request.form:
        # Said before confirming (the ledger decides again at the confirmation, under
        # its locks): above the thresholds the exchange waits for a second person.
        with unit_of_work(read_only=True) as uow:
            approval_rule = exchange_approvals.rule_for(uow.conn, member.id, euro_cents)
        if in_notes and approval_rule is not None:
            form.given_as.errors = [NotesAboveApprovalLimit.default_message]
            return page("enter", 409)
        form.request_key.data = uuid.uuid4().hex
        return page("confirm", euro_cents=euro_cents, bousol_cents=bousol_cents,
                    tender_label=TENDER_LABELS[form.tender.data], programme=programme,
                    counted=counted if in_notes else {}, ranges=_ranges(form),
                    approval_rule=approval_rule)
    try:
        if in_notes:
            result = note_operations.exchange_notes(
                unit_of_work(), current_actor(), party_code=member.code,
                euros=form.euros.data, tender=form.tender.data, counts=counts,
                ranges=_ranges(form), idempotency_key=form.request_key.data or None,
            )
        else:
            result = desk_exchange.exchange(
                unit_of_work(), current_actor(), party_code=member.code,
                euros=form.euros.data, tender=form.tender.data,
                idempotency_key=form.request_key.data or None,
                programme_id=programme.id if programme else None,
            )
    except DomainError as error:
        refuse(form, error, "given_as" if in_notes else "euros")
        return page("enter", error.http_status)
    if getattr(result, "pending", False):
        # Above the thresholds nothing moved: the clerk takes the euros only once a
        # second person has approved (docs/duties.md).
        return redirect(url_for("desk.exchange_approval", approval_id=result.approval_id))
    return redirect(url_for("desk.receipt", entry_id=result.entry_id))


@bp.route("/recu/<int:entry_id>")
@role_required("bank", "admin")
def receipt(entry_id: int):
    with unit_of_work(read_only=True) as uow:
        exchange_found = queries.exchange_receipt(uow.conn, entry_id)
        reconversion_found = (None if exchange_found
                              else queries.reconversion_receipt(uow.conn, entry_id))
    if exchange_found is not None:
        with unit_of_work(read_only=True) as uow:
            handed = notes.entry_notes(uow.conn, entry_id)
        return render_template("desk/receipt.html", title=_("Reçu de change"),
                               receipt=exchange_found, tenders=TENDER_LABELS, handed=handed)
    if reconversion_found is not None:
        return render_template("desk/reconversion_receipt.html",
                               title=_("Bordereau de reconversion"),
                               receipt=reconversion_found)
    abort(404)


# ---------------------------------------------------------------- cash closing (issue 3)


def _denomination_label(cents: int):
    if cents >= 500:
        return _l("Billets de %(value)s €", value=cents // 100)
    if cents >= 100:
        return _l("Pièces de %(value)s €", value=cents // 100)
    return lazy_ngettext("Pièces de %(num)d centime", "Pièces de %(num)d centimes", cents)


def _pieces(form, field):
    """A number of notes, coins or cheques: blank (none) or a whole number ≤ 100 000."""
    text = (field.data or "").strip()
    if text and not (text.isascii() and text.isdigit() and int(text) <= closing.COUNT_MAX):
        raise ValidationError(_l("Un nombre entier, de 0 à 100 000."))


class ClosingForm(FlaskForm):
    """The drawer counted by denomination (fields ``d50000`` … ``d1``, added below),
    the cheques, the card terminal's total, the float kept; the comment at the check."""

    cheque_count = StringField(_l("Nombre de chèques"), validators=[_pieces])
    cheque_total = StringField(_l("Total des chèques (€)"), validators=[Length(max=20)])
    card_total = StringField(_l("Total carte bancaire du terminal (€)"),
                             validators=[Length(max=20)])
    float_kept = StringField(_l("Fonds de caisse gardé pour demain (€)"),
                             validators=[Length(max=20)])
    comment = TextAreaField(_l("Commentaire (obligatoire s'il y a un écart)"),
                            validators=[Length(max=closing.COMMENT_MAX)])

    @property
    def denomination_fields(self):
        return [(cents, self[f"d{cents}"]) for cents in closing.DENOMINATIONS]


for _cents in closing.DENOMINATIONS:
    setattr(ClosingForm, f"d{_cents}",
            StringField(_denomination_label(_cents), validators=[_pieces]))


def _difference_words(cents: int) -> str:
    if cents < 0:
        return _("Il manque %(amount)s", amount=fr_money(-cents, "EUR"))
    if cents > 0:
        return _("Excédent de %(amount)s", amount=fr_money(cents, "EUR"))
    return _("La caisse est juste")


def _today_closing_id():
    with unit_of_work(read_only=True) as uow:
        return closing.for_date(uow.conn, closing.business_today())


@bp.context_processor
def _desk_day():
    """The desk's home says when the day is closed, by whom and when, at the top
    (system_home.html), before the clerk opens any form."""
    if request.endpoint not in ("desk.home",):
        return {}
    closing_id = _today_closing_id()
    if closing_id is None:
        return {"desk_closed": False}
    with unit_of_work(read_only=True) as uow:
        return {"desk_closed": True, "desk_closing": closing.get(uow.conn, closing_id)}


# The desk's forms that take cash, cheques or card: refused once the day is closed.
_CASH_FORMS = ("desk.exchange", "desk.register", "desk.renewal", "desk.notes_reactivation")


@bp.before_request
def _warn_when_closed():
    # The cash operations of a closed day are refused by the ledger (day_closed); say
    # so before the clerk types anything.
    if request.method == "GET" and request.endpoint in _CASH_FORMS \
            and _today_closing_id() is not None:
        flash(_("Journée clôturée : espèces, chèques et carte ne sont plus acceptés "
                "aujourd'hui."), "error")


def _seen(text: str | None) -> tuple[int, int, int] | None:
    """The expected figures shown at the check step, sent back with the confirmation."""
    parts = (text or "").split(":")
    if len(parts) != 3 or not all(re.fullmatch(r"-?[0-9]{1,18}", p) for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


@bp.route("/cloture", methods=["GET", "POST"])
@role_required("bank", "admin")
def closing_form():
    form = ClosingForm()
    title = _("Clôture de caisse")
    done_id = _today_closing_id()
    if done_id is not None and request.method == "GET":
        flash(_("La journée est déjà clôturée."), "info")
        return redirect(url_for("desk.closing_report", closing_id=done_id))
    with unit_of_work(read_only=True) as uow:
        exp = closing.expected(uow.conn)

    def page(step: str, status: int = 200, **extra):
        return render_template("desk/closing.html", title=title, form=form, step=step,
                               exp=exp, **extra), status

    if not form.is_submitted():
        return page("count")
    valid = form.validate()
    amounts = {}
    for name in ("cheque_total", "card_total", "float_kept"):
        try:
            amounts[name] = closing.parse_cents(form[name].data)
        except DomainError as error:
            refuse(form, error, name)
    if not valid or len(amounts) < 3:  # every field's error at once
        return page("count", 422)
    counts = {cents: field.data for cents, field in form.denomination_fields}
    cash = closing.counted_cents(closing.parse_counts(counts))
    figures = closing.plan(exp, cash_cents=cash, cheque_cents=amounts["cheque_total"],
                           card_cents=amounts["card_total"],
                           float_cents=amounts["float_kept"])
    if amounts["float_kept"] > cash or figures.deposit < 0:
        form.float_kept.errors.append(
            closing.FloatTooLarge.default_message if amounts["float_kept"] > cash
            else _("Le fonds de caisse gardé dépasse ce que la caisse détient hors "
                   "cotisations."))
        return page("count", 422)
    if "edit" in request.form:
        return page("count")
    check = {
        "lines": [(_("Espèces"), exp.cash_cents, cash),
                  (_("Chèques"), exp.cheque_cents, amounts["cheque_total"]),
                  (_("Carte bancaire"), exp.card_cents, amounts["card_total"])],
        "figures": figures, "words": _difference_words, "float_cents": amounts["float_kept"],
        "seen": f"{exp.cash_cents}:{exp.cheque_cents}:{exp.card_cents}",
    }
    if "confirm" not in request.form:
        return page("check", **check)
    try:
        result = closing.close_day(
            unit_of_work(), current_actor(), counts=counts,
            cheque_count=form.cheque_count.data, cheque_total=form.cheque_total.data,
            card_total=form.card_total.data, float_kept=form.float_kept.data,
            comment=form.comment.data, seen=_seen(request.form.get("seen")),
        )
    except closing.DayClosed:
        done_id = _today_closing_id()
        if done_id is None:
            raise
        flash(_("La journée est déjà clôturée."), "info")  # a second click, a reload
        return redirect(url_for("desk.closing_report", closing_id=done_id))
    except closing.CommentRequired as error:
        refuse(form, error, "comment")
        return page("check", 422, **check)
    except closing.ExpectedChanged as error:
        return page("count", error.http_status, refusal=error.message)
    except closing.FloatTooLarge as error:
        refuse(form, error, "float_kept")
        return page("count", 422)
    except DomainError as error:
        return page("count", error.http_status, refusal=error.message)
    flash(_("Journée clôturée."), "info")
    return redirect(url_for("desk.closing_report", closing_id=result.closing_id))


@bp.route("/cloture/<int:closing_id>")
@role_required("bank", "admin")
def closing_report(closing_id: int):
    with unit_of_work(read_only=True) as uow:
        row = closing.get(uow.conn, closing_id)
    if row is None:
        abort(404)
    return render_template(
        "desk/closing_done.html", title=_("Rapport de clôture de caisse"), row=row,
        counts=closing.counts_of(row), label=_denomination_label,
        words=_difference_words, reopenable=_reopenable(row),
        fees_handed=(row.counted_cash_cents + row.counted_cheque_cents - row.float_cents
                     - row.deposited_cents),
    )


class ReopenForm(FlaskForm):
    reason = TextAreaField(_l("Raison de la réouverture"),
                           validators=[DataRequired(), Length(max=closing.REASON_MAX)])


def _reopenable(row) -> bool:
    return (row.reopened_at is None and row.business_date == closing.business_today()
            and _today_closing_id() == row.id)


@bp.route("/cloture/<int:closing_id>/reouverture", methods=["GET", "POST"])
@role_required("admin")
def closing_reopen(closing_id: int):
    """An admin reopens today's closing made by mistake, with a reason (audited)."""
    with unit_of_work(read_only=True) as uow:
        row = closing.get(uow.conn, closing_id)
    if row is None:
        abort(404)
    form = ReopenForm()
    title = _("Rouvrir la journée du %(date)s", date=fr_date(row.business_date))
    if form.validate_on_submit():
        try:
            closing.reopen_day(unit_of_work(), current_actor(), closing_id=closing_id,
                               reason=form.reason.data)
        except closing.ClosingNotReopenable as error:
            flash_refusal(error)  # a second click, another admin, another day
            return redirect(url_for("desk.closing_report", closing_id=closing_id))
        except DomainError as error:
            refuse(form, error, "reason")
        else:
            flash(_("Journée du %(date)s rouverte : le comptoir encaisse à nouveau ; la "
                    "remise et l'écart de cette clôture sont contre-passés.",
                    date=fr_date(row.business_date)), "info")
            return redirect(url_for("desk.closing_report", closing_id=closing_id))
    elif request.method == "GET" and not _reopenable(row):
        flash(closing.ClosingNotReopenable.default_message, "error")
        return redirect(url_for("desk.closing_report", closing_id=closing_id))
    return render_template("desk/closing_reopen.html", title=title, row=row, form=form,
                           words=_difference_words), page_status(form)


@bp.route("/clotures")
@role_required("bank", "admin")
def closings():
    with unit_of_work(read_only=True) as uow:
        rows = closing.history(uow.conn, limit=60)
    return render_template("desk/closings.html", title=_("Clôtures de caisse"), rows=rows,
                           words=_difference_words)
